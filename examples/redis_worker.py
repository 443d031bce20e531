"""A worker on Redis: bulk push, batched pulls, and a lock.

Run:  SERGEANT_EXAMPLE_REDIS_HOST=localhost SERGEANT_EXAMPLE_REDIS_PORT=6379 \\
          python examples/redis_worker.py

or:   SERGEANT_EXAMPLE_REDIS_URL=redis://localhost:6379/0 python examples/redis_worker.py

The server comes from the environment: a URL, else host and port (defaults:
localhost, 6379, no password, database 0). The example uses the queue
``redis-example`` and empties it first.
"""

from __future__ import annotations

import os
import typing

from sergeant import config, objects, worker

NUMBER_OF_TASKS = 1000


def redis_connector() -> config.Connector:
    """The Redis connector for the server named by the environment."""
    url = os.environ.get("SERGEANT_EXAMPLE_REDIS_URL")
    if url:
        return config.Connector.from_url(url)
    node = {  # the Sergeant 0.27 ``nodes`` form
        "host": os.environ.get("SERGEANT_EXAMPLE_REDIS_HOST", "localhost"),
        "port": int(os.environ.get("SERGEANT_EXAMPLE_REDIS_PORT", "6379")),
        "password": None,
        "database": 0,
    }
    return config.Connector(type="redis", params={"nodes": [node]})


class SquareWorker(worker.Worker):
    """Squares numbers, 100 tasks per round trip to Redis."""

    def generate_config(self) -> config.WorkerConfig:
        return config.WorkerConfig(
            name="redis-example",
            connector=redis_connector(),
            tasks_per_transaction=100,
            max_tasks_per_run=NUMBER_OF_TASKS,
        )

    def initialize(self) -> None:
        self.total = 0

    def work(self, task: objects.Task) -> int:
        square: int = task.kwargs["n"] ** 2
        return square

    def on_success(self, task: objects.Task, returned_value: typing.Any) -> None:
        self.total += returned_value


def main() -> None:
    with SquareWorker() as squares:
        squares.init_worker()
        squares.purge_tasks()
        ids = squares.push_tasks([{"n": n} for n in range(NUMBER_OF_TASKS)])
        print(f"pushed {len(ids)} tasks in one batch")

        # A lock on the broker: only one process at a time runs this block.
        with squares.lock("redis-example-report"):
            summary = squares.work_loop()
        print(f"ran {summary['tasks_done']} tasks; sum of squares: {squares.total}")


if __name__ == "__main__":
    main()
