"""A worker class with a ``rate_limit`` for the rate-limit tests, configured by
``SERGEANT_TEST_FLOW_BROKER`` (``type`` and ``params`` as JSON),
``SERGEANT_TEST_RATE`` (``tasks/per_seconds``) and ``SERGEANT_TEST_DELIVERY``. Each
task appends ``<time.time()> <task id> <pid>`` to the ledger in
``SERGEANT_TEST_LEDGER`` as it starts."""

from __future__ import annotations

import json
import os
import time
import typing

from sergeant import config
from sergeant.objects import Task
from sergeant.worker import Worker

__all__ = ["Throttled", "environment"]

QUEUE = "throttled"


def environment(
    kind: str, params: dict[str, object], ledger: str, rate: str, delivery: str
) -> dict[str, str]:
    return {
        "SERGEANT_TEST_FLOW_BROKER": json.dumps({"type": kind, "params": params}),
        "SERGEANT_TEST_LEDGER": ledger,
        "SERGEANT_TEST_RATE": rate,
        "SERGEANT_TEST_DELIVERY": delivery,
    }


class Throttled(Worker):
    def generate_config(self) -> config.WorkerConfig:
        broker = json.loads(os.environ["SERGEANT_TEST_FLOW_BROKER"])
        tasks, per_seconds = os.environ["SERGEANT_TEST_RATE"].split("/")
        delivery = typing.cast(
            typing.Literal["at_least_once", "at_most_once"],
            os.environ.get("SERGEANT_TEST_DELIVERY", "at_least_once"),
        )
        return config.WorkerConfig(
            name=QUEUE,
            connector=config.Connector(type=broker["type"], params=broker["params"]),
            tasks_per_transaction=10,
            block_seconds=0.1,
            delivery=delivery,
            rate_limit=config.RateLimit(tasks=int(tasks), per_seconds=float(per_seconds)),
        )

    def work(self, task: Task) -> object:
        line = f"{time.time()!r} {task.id} {os.getpid()}\n"
        fd = os.open(os.environ["SERGEANT_TEST_LEDGER"], os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)
        return None
