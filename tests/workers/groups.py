"""The worker of the group tests, configured by ``SERGEANT_GROUPS_*`` variables.

Each run appends ``task_id group pid time`` to ``<ledger>.start`` when it starts and
to ``<ledger>.end`` when it ends (``time.time()``), each line in one ``O_APPEND``
write, so the tests read the runs' intervals without trusting the broker.
"""

from __future__ import annotations

import json
import os
import time

from sergeant import config
from sergeant.objects import Task
from sergeant.worker import Worker
from tests.workers.settings import environment as settings_environment

__all__ = ["QUEUE", "GroupWorker", "environment", "read_runs"]

QUEUE = "groups"


def environment(
    connector: tuple[str, dict[str, object]], ledger: str, **settings: object
) -> dict[str, str]:
    """The variables configuring :class:`GroupWorker`; ``settings`` as SERGEANT_GROUPS_<NAME>."""
    return settings_environment("SERGEANT_GROUPS", connector, ledger, **settings)


def read_runs(path: str) -> list[tuple[str, str, int, float]]:
    """The ``(task_id, group, pid, time)`` lines of one ledger file, in write order."""
    try:
        with open(path, encoding="utf-8") as file:
            lines = file.read().splitlines()
    except FileNotFoundError:
        return []
    rows = (line.split() for line in lines)
    return [(task_id, group, int(pid), float(at)) for task_id, group, pid, at in rows]


def _setting(name: str, default: str) -> str:
    return os.environ.get(f"SERGEANT_GROUPS_{name}", default)


def _record(path: str, task: Task) -> None:
    line = f"{task.id} {task.kwargs['group']} {os.getpid()} {time.time():.6f}\n".encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        os.write(fd, line)  # one write with O_APPEND: atomic among concurrent writers
    finally:
        os.close(fd)


class GroupWorker(Worker):
    """Sleeps ``kwargs['ms']`` milliseconds between its two ledger lines."""

    def generate_config(self) -> config.WorkerConfig:
        connector = json.loads(os.environ["SERGEANT_GROUPS_CONNECTOR"])
        return config.WorkerConfig(
            name=QUEUE,
            connector=config.Connector(type=connector["type"], params=connector["params"]),
            number_of_threads=int(_setting("THREADS", "1")),
            tasks_per_transaction=int(_setting("PER_TRANSACTION", "1")),
            lease_seconds=float(_setting("LEASE", "2")),
            max_deliveries=50,
            block_seconds=0.2,
            prefetch=None if _setting("PREFETCH", "") == "" else int(_setting("PREFETCH", "0")),
            group_concurrency=int(_setting("CONCURRENCY", "0")),
        )

    def work(self, task: Task) -> None:
        ledger = os.environ["SERGEANT_GROUPS_LEDGER"]
        _record(f"{ledger}.start", task)
        time.sleep(task.kwargs.get("ms", 0) / 1000)
        _record(f"{ledger}.end", task)
