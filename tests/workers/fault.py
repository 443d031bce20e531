"""The worker of the fault suite, configured by ``SERGEANT_CHAOS_*`` variables.

Each run of a task appends ``task_id attempt pid`` to ``<ledger>.start`` when it
starts and to ``<ledger>`` when it completes (``attempt`` is the delivery count),
each line in one ``O_APPEND`` write, so lines of concurrent workers never mix and
the tests count executions without trusting the broker.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import time

from sergeant import config
from sergeant.objects import Task
from sergeant.worker import Worker
from tests.workers import crash_points
from tests.workers.settings import environment as settings_environment

__all__ = ["QUEUE", "FaultWorker", "PoisonError", "environment", "read_ledger"]

QUEUE = "fault"


def environment(
    connector: tuple[str, dict[str, object]], ledger: str, **settings: object
) -> dict[str, str]:
    """The variables configuring :class:`FaultWorker`; ``settings`` as SERGEANT_CHAOS_<NAME>."""
    return settings_environment("SERGEANT_CHAOS", connector, ledger, **settings)


def read_ledger(path: str) -> list[tuple[str, int, int]]:
    """The ``(task_id, attempt, pid)`` lines of a ledger file (none if it does not exist)."""
    try:
        with open(path, encoding="utf-8") as file:
            lines = file.read().splitlines()
    except FileNotFoundError:
        return []
    rows = (line.split() for line in lines)
    return [(task_id, int(attempt), int(pid)) for task_id, attempt, pid in rows]


def _setting(name: str, default: str) -> str:
    return os.environ.get(f"SERGEANT_CHAOS_{name}", default)


def _record(path: str, task: Task) -> None:
    line = f"{task.id} {task.deliveries} {os.getpid()}\n".encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        os.write(fd, line)  # one write with O_APPEND: atomic among concurrent writers
    finally:
        os.close(fd)


def _gil_poison() -> None:
    signal.pthread_sigmask(
        signal.SIG_BLOCK, {signal.SIGUSR1, signal.SIGALRM, signal.SIGTERM, signal.SIGINT}
    )
    ctypes.PyDLL(None).pause()  # PyDLL keeps the GIL; the blocked signals never wake it


class PoisonError(BaseException):
    """A ``BaseException`` outside ``Exception``, as some libraries raise."""


#: What ``{"action": "raise", "name": ...}`` raises: each ends the worker process.
_ENDING: dict[str, type[BaseException]] = {
    "SystemExit": SystemExit,
    "KeyboardInterrupt": KeyboardInterrupt,
    "PoisonError": PoisonError,
}


class FaultWorker(Worker):
    """Sleeps ``kwargs['ms']`` milliseconds; or, by ``kwargs['action']``: holds the GIL
    forever (``'gil_poison'``) or for ``seconds`` (``'gil_hold'``), raises the
    ``BaseException`` named ``name`` (``'raise'``), calls ``os._exit`` (``'exit'``), or
    retries itself (``'retry'``). With ``SERGEANT_FAULT`` set it crashes at that point."""

    if crash_points.FAULT is not None:
        _consumer_class = crash_points.CrashingConsumer

    def generate_config(self) -> config.WorkerConfig:
        connector = json.loads(os.environ["SERGEANT_CHAOS_CONNECTOR"])
        return config.WorkerConfig(
            name=QUEUE,
            connector=config.Connector(type=connector["type"], params=connector["params"]),
            tasks_per_transaction=int(_setting("PER_TRANSACTION", "1")),
            timeouts=config.Timeouts(
                timeout=float(_setting("TIMEOUT", "0")), grace_period=float(_setting("GRACE", "1"))
            ),
            lease_seconds=float(_setting("LEASE", "1")),
            max_deliveries=int(_setting("MAX_DELIVERIES", "5")),
            max_retries=int(_setting("MAX_RETRIES", "0")),
            block_seconds=0.2,
            prefetch=None
            if _setting("PREFETCH", "0") == "none"
            else int(_setting("PREFETCH", "0")),
        )

    def work(self, task: Task) -> None:
        ledger = os.environ["SERGEANT_CHAOS_LEDGER"]
        _record(f"{ledger}.start", task)
        action = task.kwargs.get("action")
        if action == "gil_poison":
            _gil_poison()
        elif action == "gil_hold":  # a C call that keeps the GIL for this many seconds
            ctypes.PyDLL(None).sleep(int(task.kwargs["seconds"]))
        elif action == "raise":
            raise _ENDING[task.kwargs["name"]]()
        elif action == "exit":
            os._exit(int(task.kwargs.get("code", 0)))
        elif action == "retry":
            self.retry(task)
        time.sleep(task.kwargs.get("ms", 0) / 1000)
        _record(ledger, task)
