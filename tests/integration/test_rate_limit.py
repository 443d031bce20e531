"""``WorkerConfig.rate_limit`` with real worker processes (``sergeant run --workers
4``) on Redis, SQLite and MongoDB: every task runs once, and no interval of
``per_seconds`` holds more than ``tasks`` starts, by the tasks' own start times
(``time.time()`` at the start of ``work``, written to a ledger by the tasks). No
wall-clock speed is asserted."""

from __future__ import annotations

import bisect
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sergeant import config
from sergeant.killer.process import kill_tree
from sergeant.ops.stats import queue_stats
from tests.conftest import connector_params
from tests.servers import wait_until
from tests.workers import throttled

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TASKS = 300
LIMIT, PER_SECONDS = 50, 1.0


def starts(ledger: Path) -> list[tuple[float, str]]:
    """``(start time, task id)`` of every complete ledger line."""
    try:
        text = ledger.read_text()
    except FileNotFoundError:
        return []
    found = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3:
            found.append((float(parts[0]), parts[1]))
    return found


def most_in_any_window(times: list[float], window: float) -> int:
    """The most starts in any half-open interval of ``window`` seconds: the busiest
    interval begins at some start, so checking those is enough."""
    times = sorted(times)
    return max(bisect.bisect_left(times, t + window) - i for i, t in enumerate(times))


def test_most_in_any_window() -> None:
    assert most_in_any_window([0.0, 0.5, 0.99, 1.0, 1.2], 1.0) == 4  # 0.5 to 1.2
    assert most_in_any_window([0.0, 1.0, 2.0], 1.0) == 1  # half-open
    assert most_in_any_window([0.0], 1.0) == 1


@pytest.mark.parametrize(
    ("kind", "delivery"),
    [
        ("redis", "at_least_once"),
        ("local", "at_least_once"),
        ("mongo", "at_least_once"),
        ("redis", "at_most_once"),
    ],
)
def test_four_workers_keep_the_rate_limit(
    kind: str,
    delivery: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    connector_type, params = connector_params(request, kind, tmp_path)
    ledger = tmp_path / "ledger"
    env = throttled.environment(
        connector_type, params, str(ledger), f"{LIMIT}/{PER_SECONDS}", delivery
    )
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    producer = throttled.Throttled()
    producer.init_broker()
    producer.purge_tasks()
    ids = producer.push_tasks([{"n": n} for n in range(TASKS)])
    fleet = subprocess.Popen(
        [sys.executable, "-m", "sergeant.cli", "run", "tests.workers.throttled:Throttled",
         "--workers", "4"],
        cwd=PROJECT_ROOT, env={**os.environ, **env},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_until(lambda: len(starts(ledger)) >= TASKS, timeout=180, message="every task to start")
        wait_until(
            lambda: producer.number_of_enqueued_tasks(include_delayed=True) == 0,
            timeout=30,
            message="the queue to drain",
        )
    finally:
        kill_tree(fleet.pid)
        fleet.wait(timeout=30)
        producer.close()
    found = starts(ledger)
    assert sorted(task_id for _, task_id in found) == sorted(ids)  # each once
    busiest = most_in_any_window([t for t, _ in found], PER_SECONDS)
    assert busiest <= LIMIT


def throttled_workers(producer: throttled.Throttled) -> int:
    """``throttled_workers`` of the queue's ``sergeant stats`` (-1: no rate limit shown)."""
    limit = queue_stats(producer.broker, throttled.QUEUE)["rate_limit"]
    return -1 if limit is None else limit["throttled_workers"]


@pytest.mark.parametrize("kind", ["redis", "local"])
def test_a_stop_ends_a_throttled_wait_and_gives_the_tasks_back(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One start per minute: the worker waits for its next permit (``sergeant stats``
    says so); SIGTERM ends that wait at once (well before the minute), and the tasks
    not started are queued."""
    connector_type, params = connector_params(request, kind, tmp_path)
    ledger = tmp_path / "ledger"
    env = throttled.environment(connector_type, params, str(ledger), "1/60", "at_least_once")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    producer = throttled.Throttled()
    producer.init_broker()
    producer.purge_tasks()
    producer.push_tasks([{"n": n} for n in range(5)])
    fleet = subprocess.Popen(
        [sys.executable, "-m", "sergeant.cli", "run", "tests.workers.throttled:Throttled"],
        cwd=PROJECT_ROOT, env={**os.environ, **env},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_until(lambda: len(starts(ledger)) == 1, timeout=60, message="the first start")
        wait_until(lambda: producer.number_of_enqueued_tasks() == 4, timeout=30, message="one done")
        # ``sergeant stats`` shows it: the limit, the wait, the throttled worker.
        wait_until(
            lambda: throttled_workers(producer) == 1,
            timeout=30,
            message="the heartbeat to say the worker is throttled",
        )
        limit = queue_stats(producer.broker, throttled.QUEUE)["rate_limit"]
        assert limit is not None
        assert (limit["tasks"], limit["per_seconds"]) == (1, 60.0)
        assert 0 < limit["next_start_in"] <= 61
        fleet.terminate()
        assert fleet.wait(timeout=20) is not None  # the wait for the next minute ended
        assert len(starts(ledger)) == 1
        assert producer.number_of_enqueued_tasks() == 4
    finally:
        kill_tree(fleet.pid)
        fleet.wait(timeout=30)
        producer.close()


class _Threads(throttled.Throttled):
    """Eight threads in one process, on the in-process broker."""

    NAME = ""

    def generate_config(self) -> config.WorkerConfig:
        return config.WorkerConfig(
            name=throttled.QUEUE,
            connector=config.Connector(type="memory", params={"name": self.NAME}),
            tasks_per_transaction=10,
            block_seconds=0.05,
            number_of_threads=8,
            max_tasks_per_run=120,
            rate_limit=config.RateLimit(tasks=20, per_seconds=0.5),
        )


def test_threads_of_one_worker_keep_the_rate_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = tmp_path / "ledger"
    monkeypatch.setenv("SERGEANT_TEST_LEDGER", str(ledger))
    worker_class = type("Threads", (_Threads,), {"NAME": f"rate-{tmp_path.name}"})
    worker = worker_class()
    worker.init_broker()
    ids = worker.push_tasks([{"n": n} for n in range(120)])
    worker.init_worker()
    try:
        summary = worker.work_loop()
    finally:
        worker.close()
    assert summary["executor_exception"] is None
    found = starts(ledger)
    assert sorted(task_id for _, task_id in found) == sorted(ids)
    assert most_in_any_window([t for t, _ in found], 0.5) <= 20
