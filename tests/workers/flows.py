"""Two worker classes on two queues for the workflow tests, configured by
``SERGEANT_TEST_FLOW_BROKER`` (``type`` and ``params`` as JSON). Each step returns
its ``v`` and what it got as ``previous`` (after sleeping ``ms``, or holding the GIL
``gil_seconds``), and appends ``start``, ``done`` and
``cancelled`` lines (``<event> <task id> <pid>``) to the ledger in
``SERGEANT_TEST_LEDGER`` (when set)."""

from __future__ import annotations

import ctypes
import json
import os
import signal
import time
import typing

from sergeant import config
from sergeant.objects import Task
from sergeant.worker import Worker
from tests.workers import crash_points

__all__ = ["StepsA", "StepsB", "environment"]


def environment(kind: str, params: dict[str, object], ledger: str = "") -> dict[str, str]:
    return {
        "SERGEANT_TEST_FLOW_BROKER": json.dumps({"type": kind, "params": params}),
        "SERGEANT_TEST_LEDGER": ledger,
    }


class _Steps(Worker):
    QUEUE: typing.ClassVar[str]

    if crash_points.FAULT is not None:  # SERGEANT_FAULT: die at that point
        _consumer_class = crash_points.CrashingConsumer

    def generate_config(self) -> config.WorkerConfig:
        broker = json.loads(os.environ["SERGEANT_TEST_FLOW_BROKER"])
        return config.WorkerConfig(
            name=self.QUEUE,
            connector=config.Connector(type=broker["type"], params=broker["params"]),
            tasks_per_transaction=int(os.environ.get("SERGEANT_TEST_PER_TRANSACTION", "10")),
            lease_seconds=float(os.environ.get("SERGEANT_TEST_LEASE", "30")),
            block_seconds=0.1,
            timeouts=config.Timeouts(grace_period=1.0),
        )

    def _record(self, event: str, task: Task) -> None:
        ledger = os.environ.get("SERGEANT_TEST_LEDGER")
        if ledger:
            fd = os.open(ledger, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
            try:
                os.write(fd, f"{event} {task.id} {os.getpid()}\n".encode())
            finally:
                os.close(fd)

    def on_cancel(self, task: Task) -> None:
        self._record("cancelled", task)

    def work(self, task: Task) -> object:
        self._record("start", task)
        if task.kwargs.get("ms"):
            time.sleep(task.kwargs["ms"] / 1000)
        if task.kwargs.get("gil_seconds"):  # C code that keeps the GIL, deaf to signals
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM, signal.SIGUSR1})
            ctypes.PyDLL(None).sleep(int(task.kwargs["gil_seconds"]))
        if task.kwargs.get("fail"):
            raise ValueError(f"step {task.kwargs.get('v')} was told to fail")
        self._record("done", task)
        return {"v": task.kwargs.get("v"), "prev": task.previous, "flow": task.workflow_id}


class StepsA(_Steps):
    QUEUE = "flow-a"


class StepsB(_Steps):
    QUEUE = "flow-b"
