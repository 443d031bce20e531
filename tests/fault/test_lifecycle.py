"""Faults of the worker's surroundings: its supervisor SIGKILLed, its SQLite file replaced.

Real supervisors and workers, real signals; outcomes are read from the workers'
own ledger and from the broker.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import psutil
import pytest

from sergeant.connector.sqlite import Connector
from tests.fault.harness import QUEUE, Chaos, kill
from tests.servers import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

GRACE = 2.0
#: Beyond the grace period: the orphan's exit margin, process start-up, a loaded machine.
EXIT_SLACK_SECONDS = 5.0


def _gone(pid: int) -> bool:
    """The process has exited (an orphan's zombie waits for init to reap it)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _start_fleet(chaos: Chaos, workers: int) -> tuple[subprocess.Popen[bytes], list[int]]:
    supervisor = chaos.start_supervisor(workers)
    wait_until(
        lambda: len(chaos.worker_pids(supervisor)) == workers,
        timeout=30,
        message=f"{workers} workers",
    )
    return supervisor, chaos.worker_pids(supervisor)


def _kill_supervisor(
    chaos: Chaos, supervisor: subprocess.Popen[bytes], workers: list[int], bound: float
) -> None:
    """SIGKILL the supervisor; its workers must exit within ``bound`` seconds."""
    chaos.orphans += [psutil.Process(pid) for pid in workers]  # killed at teardown if alive
    kill(supervisor.pid, signal.SIGKILL)
    supervisor.wait(timeout=10)
    wait_until(
        lambda: all(_gone(pid) for pid in workers),
        timeout=bound,
        message="the orphaned workers to exit",
    )


def _drain(chaos: Chaos, pushed: list[str]) -> None:
    """A fresh worker runs what is left; nothing is lost."""
    chaos.start_worker()
    wait_until(lambda: not chaos.check(pushed)[0], timeout=60, message="every task to run")


# -- the supervisor SIGKILLed -----------------------------------------------------------


@pytest.mark.parametrize("chaos", ["redis", "local"], indirect=True)
def test_workers_of_a_sigkilled_supervisor_give_back_their_tasks_and_exit(chaos: Chaos) -> None:
    """Orphans stop within the grace period; what they prefetched is back in the queue."""
    # The default prefetch (three one-task pulls in flight on one Redis server), and
    # leases far longer than the test: only a give-back can empty them in time.
    chaos.configure(lease=60, grace=GRACE, prefetch="none")
    pushed = chaos.push([{"ms": 100} for _ in range(100)])
    supervisor, workers = _start_fleet(chaos, 2)
    wait_until(lambda: len(chaos.done()) >= 10, timeout=30, message="10 tasks done")
    _kill_supervisor(chaos, supervisor, workers, GRACE + EXIT_SLACK_SECONDS)
    assert chaos.connector.leased_count(QUEUE) == 0
    assert chaos.connector.length(QUEUE) == len(pushed) - len(chaos.runs())
    stderr = chaos.stderr(supervisor)
    assert stderr.count(f"the supervisor (pid {supervisor.pid}) is gone") == len(workers)
    _drain(chaos, pushed)
    assert chaos.check(pushed) == ([], {})


@pytest.mark.parametrize("chaos", ["redis"], indirect=True)
def test_an_orphan_whose_task_outlives_the_grace_period_kills_itself(chaos: Chaos) -> None:
    """No supervisor will kill it: the orphan kills itself after the grace period."""
    chaos.configure(lease=2, grace=1, prefetch="none")
    [long_task] = chaos.push([{"ms": 8000}])
    pushed = [long_task, *chaos.push([{"ms": 1} for _ in range(10)])]
    supervisor, workers = _start_fleet(chaos, 1)
    wait_until(
        lambda: any(task_id == long_task for task_id, _, _ in chaos.starts()),
        timeout=30,
        message="the long task to start",
    )
    _kill_supervisor(chaos, supervisor, workers, 1 + EXIT_SLACK_SECONDS)
    assert chaos.runs()[long_task] == 0  # killed while it ran
    assert "killing this worker and its children" in chaos.stderr(supervisor)
    _drain(chaos, pushed)  # its lease expired: it runs again
    assert chaos.check(pushed)[0] == []


# -- the SQLite file replaced -----------------------------------------------------------


def _change_file(path: str, change: str, tmp_path: Path) -> None:
    """Delete the broker file (and its WAL), or put another database in its place."""
    for suffix in ("-wal", "-shm", ""):
        os.remove(path + suffix)
    if change == "replaced":
        other = str(tmp_path / "restored.sqlite3")
        with Connector(other) as connector:
            connector.ping()  # a fresh, empty broker file
        os.replace(other, path)


@pytest.mark.parametrize("chaos", ["local"], indirect=True)
@pytest.mark.parametrize("change", ["deleted", "replaced"])
def test_workers_leave_a_replaced_sqlite_file_and_their_successors_run_the_new_one(
    chaos: Chaos, change: str, tmp_path: Path
) -> None:
    """Each worker says so in one ERROR line and exits non-zero; the respawned ones
    run the tasks pushed to the new file."""
    chaos.configure(lease=5)
    first = chaos.push([{"ms": 1} for _ in range(20)])
    supervisor, workers = _start_fleet(chaos, 2)
    wait_until(lambda: not chaos.check(first)[0], timeout=30, message="the first tasks to run")
    # Both loops run (their heartbeats are in the file): both have the old file open.
    wait_until(lambda: len(chaos.connector.workers()) == 2, timeout=30, message="2 heartbeats")
    chaos.reopen()
    _change_file(str(chaos.connector_config[1]["file_path"]), change, tmp_path)
    pushed = chaos.push([{"ms": 1} for _ in range(200)])
    wait_until(
        lambda: all(_gone(pid) for pid in workers), timeout=15, message="the old workers to exit"
    )
    wait_until(lambda: not chaos.check(pushed)[0], timeout=60, message="the new file's tasks")
    stderr = chaos.stderr(supervisor)
    for pid in workers:
        errors = re.findall(rf"^.* {pid} ERROR .*$", stderr, re.MULTILINE)
        assert len(errors) == 1, stderr
        assert "BrokerFileReplaced" in errors[0]
        assert f"(pid {pid}) ended: EXECUTOR_FAILED" in stderr
    assert chaos.check(pushed) == ([], {})
