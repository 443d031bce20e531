"""A worker class whose broker comes from $SERGEANT_TEST_BROKER_URL, for `-b module:Class` tests."""

from __future__ import annotations

import os

from sergeant import config, objects, worker


class UrlWorker(worker.Worker):
    """Runs nothing of note; its config names the broker and the queue ``cli-jobs``."""

    def generate_config(self) -> config.WorkerConfig:
        return config.WorkerConfig(
            name="cli-jobs",
            connector=config.Connector.from_url(os.environ["SERGEANT_TEST_BROKER_URL"]),
            max_tasks_per_run=1,
            block_seconds=0.05,
        )

    def work(self, task: objects.Task) -> int:
        return len(task.kwargs)
