"""The fault suite's harness: worker processes, a producer, the ledger checker, a seed.

Workers are real processes (``python -m sergeant.slave`` or the supervisor) running
``tests.workers.fault.FaultWorker``; faults are real signals. The checker reads the
workers' own ledger, never the broker's word, and reports like a total-queue
checker: lost (pushed, never completed), duplicated (completed more than once).
"""

from __future__ import annotations

import collections
import contextlib
import os
import random
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil

from sergeant.connector import Connector
from sergeant.killer.process import kill_tree
from tests.workers.fault import QUEUE, FaultWorker, environment, read_ledger

__all__ = ["QUEUE", "Chaos", "kill", "seeded_random"]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
WORKER = ["--worker-module", "tests.workers.fault", "--worker-class", "FaultWorker"]


def seeded_random() -> tuple[int, random.Random]:
    """A random source seeded from SERGEANT_CHAOS_SEED or at random; the seed is printed."""
    seed = int(os.environ.get("SERGEANT_CHAOS_SEED") or random.randrange(2**32))
    print(f"chaos seed: {seed} (rerun with SERGEANT_CHAOS_SEED={seed})")
    return seed, random.Random(seed)


class Chaos:
    """Worker processes of one test over one broker, a producer, and their ledger."""

    def __init__(self, tmp_path: Path, connector: tuple[str, dict[str, object]]) -> None:
        self.tmp_path = tmp_path
        self.connector_config = connector
        self.ledger = str(tmp_path / "ledger")
        self.env: dict[str, str] = environment(connector, self.ledger)
        self.processes: list[subprocess.Popen[bytes]] = []
        # Processes that may outlive their parent, killed by close() (psutil refuses a reused pid).
        self.orphans: list[psutil.Process] = []
        self._producer: FaultWorker | None = None

    def configure(self, **settings: object) -> None:
        """Set SERGEANT_CHAOS_* for the workers started from now on."""
        self.env = environment(self.connector_config, self.ledger, **settings)

    @property
    def producer(self) -> FaultWorker:
        """A FaultWorker in this process, for pushing and inspecting the queue."""
        if self._producer is None:
            with _environ(self.env):
                self._producer = FaultWorker()
                self._producer.init_broker()
        return self._producer

    @property
    def connector(self) -> Connector:
        """The producer's connector (raw bytes, leases, dead letters)."""
        return self.producer.broker.connector

    def reopen(self) -> None:
        """Close the producer; the next push opens the broker afresh (a replaced file)."""
        if self._producer is not None:
            self._producer.close()
            self._producer = None

    def push(self, kwargs_list: list[dict[str, object]]) -> list[str]:
        """Push tasks in one batch; their ids."""
        return self.producer.push_tasks(kwargs_list)

    # -- processes ------------------------------------------------------------------

    def _spawn(
        self, command: list[str], name: str, extra_env: dict[str, str]
    ) -> subprocess.Popen[bytes]:
        stderr_path = self.tmp_path / f"{name}-{len(self.processes)}.stderr"
        with open(stderr_path, "wb") as stderr:
            process = subprocess.Popen(
                command,
                cwd=PROJECT_ROOT,
                env={**os.environ, **self.env, **extra_env},
                stderr=stderr,
            )
        process.stderr_path = stderr_path  # type: ignore[attr-defined]
        self.processes.append(process)
        return process

    def start_worker(self, fault: str | None = None) -> subprocess.Popen[bytes]:
        """One ``python -m sergeant.slave`` worker; ``fault`` sets SERGEANT_FAULT."""
        extra = {"SERGEANT_FAULT": fault} if fault else {}
        return self._spawn([sys.executable, "-m", "sergeant.slave", *WORKER], "worker", extra)

    def start_supervisor(self, workers: int) -> subprocess.Popen[bytes]:
        """``python -m sergeant.supervisor`` running ``workers`` FaultWorkers."""
        command = [sys.executable, "-m", "sergeant.supervisor", "--log-level", "INFO"]
        command += ["--concurrent-workers", str(workers), *WORKER]
        return self._spawn(command, "supervisor", {})

    @staticmethod
    def stderr(process: subprocess.Popen[bytes]) -> str:
        path: Path = process.stderr_path  # type: ignore[attr-defined]
        return path.read_text(errors="replace")

    @staticmethod
    def worker_pids(supervisor: subprocess.Popen[bytes]) -> list[int]:
        """Pids of the supervisor's live worker processes."""
        with contextlib.suppress(psutil.NoSuchProcess):
            return [
                child.pid
                for child in psutil.Process(supervisor.pid).children()
                if "sergeant.slave" in " ".join(child.cmdline()) and child.status() != "zombie"
            ]
        return []

    def close(self) -> None:
        """Kill every process this test started (and its children), and its orphans."""
        for process in self.processes:
            if process.poll() is None:
                kill_tree(process.pid)
                process.wait(timeout=30)
        for orphan in self.orphans:
            with contextlib.suppress(psutil.NoSuchProcess):
                for member in [*orphan.children(recursive=True), orphan]:
                    member.kill()
        if self._producer is not None:
            self._producer.close()

    # -- the ledger -----------------------------------------------------------------

    def done(self) -> list[tuple[str, int, int]]:
        """``(task_id, attempt, pid)`` of every completed run."""
        return read_ledger(self.ledger)

    def starts(self) -> list[tuple[str, int, int]]:
        """``(task_id, attempt, pid)`` of every started run."""
        return read_ledger(f"{self.ledger}.start")

    def runs(self) -> collections.Counter[str]:
        """Completed runs per task id."""
        return collections.Counter(task_id for task_id, _, _ in self.done())

    def check(self, pushed: list[str]) -> tuple[list[str], dict[str, int]]:
        """(lost, duplicated): pushed ids never completed, and ids completed more than once."""
        runs = self.runs()
        lost = [task_id for task_id in pushed if runs[task_id] == 0]
        duplicated = {task_id: n for task_id, n in runs.items() if n > 1}
        return lost, duplicated

    def reruns_not_explained_by_a_death(self, pushed: list[str], died: set[int]) -> dict[str, int]:
        """Ids completed more than once where some completion but the last ran in a
        process not in ``died``.

        A task settled while its acknowledgement still rode on a pull sent ahead is
        released, uncharged, when its process dies, and runs again: at-least-once
        allows that rerun, and only that one.
        """
        by_task: dict[str, list[int]] = collections.defaultdict(list)
        for task_id, _, pid in self.done():
            by_task[task_id].append(pid)
        return {
            task_id: len(pids)
            for task_id, pids in by_task.items()
            if task_id in pushed and len(pids) > 1 and not set(pids[:-1]) <= died
        }

    def broker_is_empty(self) -> bool:
        """Nothing ready, delayed or leased is left in the queue."""
        connector = self.connector
        return (
            connector.length(QUEUE, include_delayed=True) == 0
            and connector.leased_count(QUEUE) == 0
        )


def kill(pid: int, sig: int = signal.SIGKILL) -> None:
    """Send ``sig`` to ``pid`` if it still exists."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


@contextlib.contextmanager
def _environ(env: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
