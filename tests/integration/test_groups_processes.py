"""Groups with real worker processes: a supervisor's workers (several threads each)
never run more than ``group_concurrency`` tasks of one group at once, also while
one of them is SIGKILLed; and a small group pushed after a big one is served at once.

The tasks write the ledger (``tests.workers.groups``): start and end times per run,
read back as intervals; the broker's word is not trusted."""

from __future__ import annotations

import collections
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from sergeant.killer.process import kill_tree
from tests.conftest import connector_params
from tests.servers import wait_until
from tests.workers.groups import GroupWorker, environment, read_runs

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
WORKER = ["--worker-module", "tests.workers.groups", "--worker-class", "GroupWorker"]


class Groups:
    """A producer and the supervisors of one test, over one broker, and their ledger."""

    def __init__(self, tmp_path: Path, connector: tuple[str, dict[str, object]]) -> None:
        self.tmp_path = tmp_path
        self.ledger = str(tmp_path / "ledger")
        self.connector_config = connector
        self.env: dict[str, str] = environment(connector, self.ledger)
        self.processes: list[subprocess.Popen[bytes]] = []
        os.environ.update(self.env)
        self.producer = GroupWorker()
        self.producer.init_broker()

    def supervisor(self, workers: int, **settings: object) -> subprocess.Popen[bytes]:
        env = {**os.environ, **environment(self.connector_config, self.ledger, **settings)}
        command = [sys.executable, "-m", "sergeant.supervisor", "--log-level", "INFO"]
        command += ["--concurrent-workers", str(workers), *WORKER]
        with open(self.tmp_path / f"supervisor-{len(self.processes)}.stderr", "wb") as stderr:
            process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stderr=stderr)
        self.processes.append(process)
        return process

    def starts(self) -> list[tuple[str, str, int, float]]:
        return read_runs(f"{self.ledger}.start")

    def ends(self) -> list[tuple[str, str, int, float]]:
        return read_runs(f"{self.ledger}.end")

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                kill_tree(process.pid)
                process.wait(timeout=30)
        self.producer.close()
        for name in self.env:
            os.environ.pop(name, None)


@pytest.fixture(params=["redis", "local", "mongo", "mongo-2-nodes"])
def groups(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Groups]:
    harness = Groups(tmp_path, connector_params(request, request.param, tmp_path))
    yield harness
    harness.close()


def worker_pids(supervisor: subprocess.Popen[bytes]) -> list[int]:
    with contextlib.suppress(psutil.NoSuchProcess):
        return [
            child.pid
            for child in psutil.Process(supervisor.pid).children()
            if "sergeant.slave" in " ".join(child.cmdline()) and child.status() != "zombie"
        ]
    return []


def most_at_once(intervals: list[tuple[float, float]]) -> int:
    """The most intervals overlapping at one instant (an end at t comes before a start)."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = most = 0
    for _, step in events:
        running += step
        most = max(most, running)
    return most


def test_group_concurrency_holds_across_processes_and_a_kill(groups: Groups) -> None:
    """4 processes x 8 threads, group_concurrency=2: never 3 runs of a group at once
    (by the ledger), and after a SIGKILL every task still completes."""
    names = [f"g{n}" for n in range(6)]
    keys = [name for _ in range(40) for name in names]
    # Every 20th task runs 4 s: a worker caught in one is surely cut by the kill.
    kwargs = [{"group": k, "ms": 4000 if i % 20 == 19 else 40} for i, k in enumerate(keys)]
    ids = groups.producer.push_tasks(kwargs, group_keys=keys)
    long_ids = {task_id for i, task_id in enumerate(ids) if i % 20 == 19}
    supervisor = groups.supervisor(4, threads=8, concurrency=2, lease=2)
    wait_until(lambda: len(groups.ends()) >= 60, timeout=120, message="60 runs")
    victims: list[int] = []

    def busy_worker() -> bool:
        """A live worker process in the middle of a long run (started, not ended)."""
        ended = {(task_id, pid) for task_id, _, pid, _ in groups.ends()}
        live = set(worker_pids(supervisor))
        victims[:] = [
            pid
            for task_id, _, pid, _ in groups.starts()
            if pid in live and task_id in long_ids and (task_id, pid) not in ended
        ]
        return bool(victims)

    wait_until(busy_worker, timeout=120, interval=0.005, message="a worker in a long run")
    victim = victims[0]
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: not psutil.pid_exists(victim) or psutil.Process(victim).status() == "zombie")
    killed_at = time.time()

    def done() -> bool:
        return {task_id for task_id, *_ in groups.ends()} >= set(ids)

    wait_until(done, timeout=240, interval=0.1, message="every task to complete")
    ends: dict[tuple[str, int], list[float]] = collections.defaultdict(list)
    for task_id, _, pid, at in groups.ends():
        ends[(task_id, pid)].append(at)
    by_group: dict[str, list[tuple[float, float]]] = collections.defaultdict(list)
    unfinished = 0
    for task_id, group, pid, at in groups.starts():
        finished = [end for end in ends.get((task_id, pid), []) if end >= at]
        if finished:
            end = min(finished)
        else:
            assert pid == victim, f"run of {task_id} in {pid} never ended"
            end, unfinished = killed_at, unfinished + 1
        by_group[group].append((at, end))
    print(f"{len(ids)} tasks, {len(groups.starts())} runs, {unfinished} cut by the kill")
    assert set(by_group) == set(names)
    for group, intervals in by_group.items():
        assert most_at_once(intervals) <= 2, group
    assert max(most_at_once(v) for v in by_group.values()) == 2  # the bound was reached
    assert unfinished >= 1  # the kill cut runs short: their slots came back all the same
    assert supervisor.poll() is None


def test_a_small_group_is_not_stuck_behind_a_big_one(groups: Groups) -> None:
    """Group A pushes 10,000 tasks, then group B 10: every B task starts before A's
    200th does."""
    groups.producer.push_tasks([{"group": "A", "ms": 1}] * 10_000, group_keys="A")
    groups.producer.push_tasks([{"group": "B", "ms": 1}] * 10, group_keys="B")
    groups.supervisor(2, threads=4, concurrency=4, per_transaction=2)

    def enough() -> bool:
        starts = groups.starts()
        b = sum(group == "B" for _, group, _, _ in starts)
        a = sum(group == "A" for _, group, _, _ in starts)
        return b >= 10 and a >= 200

    wait_until(enough, timeout=180, interval=0.1, message="10 B starts and 200 A starts")
    order = [group for _, group, _, _ in groups.starts()]
    a_200th = [i for i, group in enumerate(order) if group == "A"][199]
    last_b = max(i for i, group in enumerate(order) if group == "B")
    print(f"last B start at position {last_b}, A's 200th at {a_200th}")
    assert last_b < a_200th
