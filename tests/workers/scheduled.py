"""A worker with two schedules (every second, and a cron line), configured by
``SERGEANT_TEST_*`` variables. Each task appends ``schedule tick pid`` to an
independent ledger file, so tests count the ticks run without trusting the broker."""

from __future__ import annotations

import json
import os

from sergeant import config
from sergeant.objects import Task
from sergeant.worker import Worker

__all__ = ["QUEUE", "ScheduledWorker", "read_ticks"]

QUEUE = "scheduled"


def read_ticks(path: str) -> list[tuple[str, float]]:
    """The ``(schedule, tick)`` of every task run, in ledger order."""
    try:
        with open(path, encoding="utf-8") as file:
            lines = file.read().splitlines()
    except FileNotFoundError:
        return []
    return [(name, float(tick)) for name, tick, _ in (line.split() for line in lines)]


class ScheduledWorker(Worker):
    def generate_config(self) -> config.WorkerConfig:
        connector = json.loads(os.environ["SERGEANT_TEST_CONNECTOR"])
        return config.WorkerConfig(
            name=QUEUE,
            connector=config.Connector(type=connector["type"], params=connector["params"]),
            schedules=[
                config.Schedule(every_seconds=1, kwargs={"s": "every"}, name="every"),
                config.Schedule(
                    cron=os.environ.get("SERGEANT_TEST_CRON", "* * * * *"),
                    kwargs={"s": "cron"},
                    name="cron",
                ),
            ],
            lease_seconds=5,
            block_seconds=0.1,
        )

    def work(self, task: Task) -> None:
        line = f"{task.kwargs['s']} {task.scheduled_for!r} {os.getpid()}\n".encode()
        fd = os.open(os.environ["SERGEANT_TEST_LEDGER"], os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            os.write(fd, line)  # one write with O_APPEND: lines of concurrent workers never mix
        finally:
            os.close(fd)
