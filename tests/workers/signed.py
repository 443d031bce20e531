"""A worker that signs and checks its tasks, for the signing tests.

``SERGEANT_TEST_BROKER_URL`` names the broker, ``SERGEANT_TEST_SIGNING_KEYS`` its
keys (whitespace-separated, the first signs). It records each task's kwargs in
:attr:`SignedWorker.ran` and stops after a second without tasks.
"""

from __future__ import annotations

import os
import typing

from sergeant import config, objects, worker

#: The environment variable the worker's keys come from.
KEYS_ENV = "SERGEANT_TEST_SIGNING_KEYS"


class SignedWorker(worker.Worker):
    """Runs signed tasks of the queue ``signed``; ``kwargs['retry']`` retries once."""

    def __init__(self) -> None:
        super().__init__()
        self.ran: list[dict[str, typing.Any]] = []

    def generate_config(self) -> config.WorkerConfig:
        return config.WorkerConfig(
            name="signed",
            connector=config.Connector.from_url(os.environ["SERGEANT_TEST_BROKER_URL"]),
            encoder=config.Encoder(signing_key_env=KEYS_ENV),
            starvation=config.Starvation(time_with_no_tasks=1),
            block_seconds=0.05,
        )

    def work(self, task: objects.Task) -> None:
        self.ran.append(task.kwargs)
        if task.kwargs.get("retry") and task.run_count == 0:
            self.retry(task)

    def on_starvation(self, time_with_no_tasks: int) -> None:
        self.stop()
