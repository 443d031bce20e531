"""Task progress on each broker: throttled writes, the last value kept, bad input refused."""

from __future__ import annotations

import math
import time
import typing

import pytest

from sergeant import config
from sergeant.broker.progress import DEFAULT_TTL_SECONDS, progress_ttl
from sergeant.consume import progress as _progress
from sergeant.objects import Progress, Task
from sergeant.worker import Worker

STEPS = 5_000


class Reporter(Worker):
    """Reports ``kwargs['steps']`` progress values, or the one in ``kwargs['fraction']``."""

    CONFIG: typing.ClassVar[config.WorkerConfig]

    def __init__(self) -> None:
        super().__init__()
        self.refusals: list[BaseException] = []

    def generate_config(self) -> config.WorkerConfig:
        return self.CONFIG

    def work(self, task: Task) -> typing.Any:
        if "fraction" in task.kwargs:
            try:
                self.set_progress(task.kwargs["fraction"], task.kwargs.get("message"))
            except (ValueError, TypeError) as exc:
                self.refusals.append(exc)
            return None
        steps = int(task.kwargs.get("steps", 0))
        for step in range(1, steps + 1):
            self.set_progress(step / steps, f"step {step} of {steps}")
        return steps


def build(connector_config: tuple[str, dict[str, object]], **overrides: typing.Any) -> Reporter:
    kind, params = connector_config
    settings: dict[str, typing.Any] = {
        "name": "progress",
        "connector": config.Connector(type=kind, params=params),  # type: ignore[arg-type]
        "block_seconds": 0.05,
    }
    settings.update(overrides)
    worker_class = type("ProgressWorker", (Reporter,), {"CONFIG": config.WorkerConfig(**settings)})
    worker: Reporter = worker_class()
    worker.init_worker()
    worker.purge_tasks()
    return worker


@pytest.fixture
def memory_config(memory_name: str) -> tuple[str, dict[str, object]]:
    return "memory", {"name": memory_name}


def test_the_last_value_is_stored_and_writes_are_throttled(
    connector_config: tuple[str, dict[str, object]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Thousands of set_progress calls make a few writes; get_progress returns the last one."""
    worker = build(connector_config, max_tasks_per_run=2)
    try:
        writes: list[str] = []
        store = worker.broker.store_progress

        def counted(task_id: str, progress: Progress, ttl_seconds: float) -> None:
            writes.append(task_id)
            store(task_id, progress, ttl_seconds)

        monkeypatch.setattr(worker.broker, "store_progress", counted)
        reported, silent = worker.push_tasks([{"steps": STEPS}, {"steps": 0}])
        before = time.time()
        summary = worker.work_loop()
        assert summary["tasks_done"] == 2
        progress = worker.get_progress(reported)
        assert progress is not None
        assert (progress.fraction, progress.message) == (1.0, f"step {STEPS} of {STEPS}")
        assert before - 1 <= progress.updated_at <= time.time() + 1
        assert worker.get_progress(silent) is None
        assert worker.get_progress("no-such-task") is None
        # The first call writes, then one write per interval, then the last value.
        assert 2 <= len(writes) < STEPS / 100
        assert set(writes) == {reported}
    finally:
        worker.close()


def test_each_thread_reports_its_own_task(memory_config: tuple[str, dict[str, object]]) -> None:
    """With several threads each task's progress is its own."""
    worker = build(memory_config, max_tasks_per_run=4, number_of_threads=2)
    try:
        ids = worker.push_tasks([{"steps": steps} for steps in (10, 20, 30, 40)])
        worker.work_loop()
        messages = [getattr(worker.get_progress(task_id), "message", None) for task_id in ids]
        assert messages == [f"step {n} of {n}" for n in (10, 20, 30, 40)]
    finally:
        worker.close()


@pytest.mark.parametrize("fraction", [-0.1, 1.5, math.nan, math.inf, "half", None])
def test_a_bad_fraction_is_refused_with_the_accepted_range(
    memory_config: tuple[str, dict[str, object]], fraction: object
) -> None:
    """A fraction outside 0..1 (or not a number) raises a ValueError naming it and the range."""
    worker = build(memory_config, max_tasks_per_run=1)
    try:
        [task_id] = worker.push_tasks([{"fraction": fraction}])
        worker.work_loop()
        [refusal] = worker.refusals
        assert isinstance(refusal, ValueError)
        assert "set_progress(fraction)" in str(refusal)
        assert "from 0.0 to 1.0" in str(refusal)
        assert repr(fraction) in str(refusal)
        assert worker.get_progress(task_id) is None
    finally:
        worker.close()


def test_a_bad_message_and_a_call_outside_a_task_are_refused(
    memory_config: tuple[str, dict[str, object]],
) -> None:
    """message must be a str or None; outside work there is no task to report for."""
    worker = build(memory_config, max_tasks_per_run=1)
    try:
        worker.push_tasks([{"fraction": 0.5, "message": 3}])
        worker.work_loop()
        [refusal] = worker.refusals
        assert isinstance(refusal, TypeError)
        assert "set_progress(message)" in str(refusal)
        with pytest.raises(RuntimeError, match="no task runs in this thread"):
            worker.set_progress(0.5)
    finally:
        worker.close()


def test_the_record_lives_as_long_as_results_else_a_day() -> None:
    assert progress_ttl(60.0) == 60.0
    assert progress_ttl(0.0) == DEFAULT_TTL_SECONDS == 86_400.0
    assert 0 < _progress.WRITE_INTERVAL_SECONDS <= 1


def test_at_most_once_stores_the_last_value_too(
    memory_config: tuple[str, dict[str, object]],
) -> None:
    worker = build(memory_config, max_tasks_per_run=1, delivery="at_most_once")
    try:
        [task_id] = worker.push_tasks([{"steps": 100}])
        worker.work_loop()
        assert worker.get_progress(task_id)[:2] == (1.0, "step 100 of 100")  # type: ignore[index]
    finally:
        worker.close()
