"""Delayed and priority tasks: ``consumable_from`` and ``priority='HIGH'``.

Run:  python examples/delayed_and_priority.py

Four tasks are pushed: two NORMAL ones, one delayed by a second, then one HIGH.
The worker takes one task at a time, so the order it runs them in shows the rules:
HIGH before NORMAL, push order within a priority, and a delayed task only once due.
"""

from __future__ import annotations

import time

from sergeant import config, objects, worker


class OrderWorker(worker.Worker):
    """Prints each task's name and how long after the push it ran."""

    pushed_at = 0.0

    def generate_config(self) -> config.WorkerConfig:
        return config.WorkerConfig(
            name="delayed-and-priority-example",
            tasks_per_transaction=1,  # one task per pull, so priorities decide every pick
            max_tasks_per_run=4,
        )

    def work(self, task: objects.Task) -> None:
        waited = time.time() - self.pushed_at
        print(f"ran {task.kwargs['name']} after {waited:.1f}s")


def main() -> None:
    with OrderWorker() as order:
        order.init_worker()
        order.purge_tasks()
        order.pushed_at = time.time()
        order.push_tasks([{"name": "normal-1"}, {"name": "normal-2"}])
        order.push_task({"name": "delayed"}, consumable_from=time.time() + 1.0)
        order.push_task({"name": "urgent"}, priority="HIGH")
        ready = order.number_of_enqueued_tasks()
        everything = order.number_of_enqueued_tasks(include_delayed=True)
        print(f"{ready} ready, {everything} with the delayed one")
        order.work_loop()


if __name__ == "__main__":
    main()
