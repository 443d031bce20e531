"""Soft timeouts inside this process: WorkerTimedout is raised in the task, the worker goes on.

These run ``work_loop`` in the test process itself. The watchdog process guards it
too (with a long grace period), exactly as in a worker process. pytest-timeout
uses its thread method here because the serial executor owns SIGALRM.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sergeant.errors import TaskFailed
from tests.workers.scenario import ScenarioWorker, ThreadedScenarioWorker, environment, read_ledger

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60, method="thread")]


def _run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, worker_class: type[ScenarioWorker], action: str
) -> list[tuple[str, str, int]]:
    ledger = str(tmp_path / "ledger")
    env = environment(str(tmp_path / "b.sqlite3"), ledger, timeout=0.5, grace=30, max_tasks=2)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    worker = worker_class()
    worker.init_worker()
    worker.push_tasks([{"action": action, "tag": "slow"}, {"tag": "after"}])
    summary = worker.work_loop()
    assert summary["tasks_done"] == 2
    return read_ledger(ledger)


def test_serial_catastrophic_regex_times_out_and_the_worker_goes_on(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A catastrophic regex in the main thread gets WorkerTimedout; the next task runs."""
    ledger = _run(monkeypatch, tmp_path, ScenarioWorker, "regex")
    me = os.getpid()
    assert ("timeout", "slow", me) in ledger
    assert ("done", "after", me) in ledger
    assert ("done", "slow", me) not in ledger


def test_threaded_python_loop_times_out_and_the_worker_goes_on(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A pure-Python busy loop in an executor thread gets WorkerTimedout raised in it."""
    ledger = _run(monkeypatch, tmp_path, ThreadedScenarioWorker, "spin")
    me = os.getpid()
    assert ("timeout", "slow", me) in ledger
    assert ("done", "after", me) in ledger


def test_serial_task_within_its_timeout_is_not_interrupted(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A task that ends before its deadline succeeds; a late alarm never fires afterwards."""
    ledger = _run(monkeypatch, tmp_path, ScenarioWorker, "ok")
    assert [event for event, _, _ in ledger] == ["start", "done", "start", "done"]


@pytest.mark.parametrize("worker_class", [ScenarioWorker, ThreadedScenarioWorker])
def test_a_timed_out_task_says_which_timeout_it_exceeded(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, worker_class: type[ScenarioWorker]
) -> None:
    """WorkerTimedout carries a message naming the timeout, also in the stored result."""
    env = environment(
        str(tmp_path / "b.sqlite3"), str(tmp_path / "ledger"), timeout=0.5, max_tasks=1
    )
    for name, value in {**env, "SERGEANT_TEST_RESULT_TTL": "60"}.items():
        monkeypatch.setenv(name, value)
    worker = worker_class()
    worker.init_worker()
    task_id = worker.push_task({"action": "sleep", "seconds": 5})
    worker.work_loop()
    with pytest.raises(TaskFailed) as failed:
        worker.get_result(task_id, timeout=0)
    assert failed.value.error_type == "WorkerTimedout"
    assert failed.value.error_message == "task exceeded its timeout of 0.5s"
