"""Faults of the worker's surroundings: its SQLite file replaced.

Real supervisors and workers, real signals; outcomes are read from the workers'
own ledger and from the broker.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import psutil
import pytest

from sergeant.connector.local import Connector
from tests.fault.harness import Chaos
from tests.servers import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


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
