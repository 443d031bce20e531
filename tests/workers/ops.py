"""A worker for the operations tests: broker, queue and options from the environment.

``SERGEANT_TEST_BROKER_URL`` names the broker, ``SERGEANT_TEST_QUEUE`` the queue
(default ``ops``), ``SERGEANT_TEST_MAX_TASKS`` its ``max_tasks_per_run`` (default 0),
``SERGEANT_TEST_RESULT_TTL`` its ``result_ttl_seconds`` (default 60). A task returns
``kwargs['value']``, raises ``ValueError`` when ``kwargs['fail']``, sleeps
``kwargs['sleep']`` seconds, reports ``kwargs['progress']`` (with the message
``kwargs.get('message')``) first, and waits for :data:`RELEASE` when ``kwargs['hold']``
(in-process tests only).
"""

from __future__ import annotations

import os
import threading
import time
import typing

from sergeant import config, objects, worker

#: Set by an in-process test to let a ``hold`` task finish.
RELEASE = threading.Event()


class OpsWorker(worker.Worker):
    """Returns, fails, sleeps or holds as its task's kwargs say."""

    def generate_config(self) -> config.WorkerConfig:
        return config.WorkerConfig(
            name=os.environ.get("SERGEANT_TEST_QUEUE", "ops"),
            connector=config.Connector.from_url(os.environ["SERGEANT_TEST_BROKER_URL"]),
            max_tasks_per_run=int(os.environ.get("SERGEANT_TEST_MAX_TASKS", "0")),
            result_ttl_seconds=float(os.environ.get("SERGEANT_TEST_RESULT_TTL", "60")),
            lease_seconds=3.0,  # heartbeats every second, so tests see them soon
            block_seconds=0.05,
        )

    def work(self, task: objects.Task) -> typing.Any:
        if "progress" in task.kwargs:
            self.set_progress(float(task.kwargs["progress"]), task.kwargs.get("message"))
        if task.kwargs.get("hold"):
            RELEASE.wait(30)
        if task.kwargs.get("sleep"):
            time.sleep(float(task.kwargs["sleep"]))
        if task.kwargs.get("fail"):
            raise ValueError(f"asked to fail: {task.kwargs['fail']}")
        return task.kwargs.get("value")
