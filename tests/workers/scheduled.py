"""A worker with two schedules (every second, and a cron line), configured by
``SERGEANT_TEST_*`` variables. Each task appends ``schedule tick task_id pid`` to an
independent ledger file, so tests count the ticks run without trusting the broker:
a tick pushed twice shows two task ids (each scheduler makes its own), a task run
again after its worker died shows its one id twice."""

from __future__ import annotations

import json
import os

from sergeant import config
from sergeant.objects import Task
from sergeant.worker import Worker

__all__ = ["QUEUE", "ScheduledWorker", "read_ticks"]

QUEUE = "scheduled"


def read_ticks(path: str) -> list[tuple[str, float, str]]:
    """The ``(schedule, tick, task id)`` of every task run, in ledger order."""
    try:
        with open(path, encoding="utf-8") as file:
            lines = file.read().splitlines()
    except FileNotFoundError:
        return []
    rows = (line.split() for line in lines)
    return [(name, float(tick), task_id) for name, tick, task_id, _ in rows]


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
        line = f"{task.kwargs['s']} {task.scheduled_for!r} {task.id} {os.getpid()}\n".encode()
        fd = os.open(os.environ["SERGEANT_TEST_LEDGER"], os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            os.write(fd, line)  # one write with O_APPEND: lines of concurrent workers never mix
        finally:
            os.close(fd)
