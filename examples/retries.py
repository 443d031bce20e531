"""Retries with a bound, and the dead letters a task lands in when it runs out.

Run:  python examples/retries.py

A task fails ``fail_times`` times before it succeeds. ``on_failure`` retries it
with a growing delay; after ``max_retries=2`` retries ``retry()`` refuses, the
worker calls ``on_max_retries`` and the task goes to the dead letters.
"""

from __future__ import annotations

import time

from sergeant import config, objects, worker

#: Runs of the work loop: 'flaky' runs twice, 'broken' three times (two retries).
EXPECTED_RUNS = 5


class FlakyError(Exception):
    """A failure that may go away on the next try."""


class RetryingWorker(worker.Worker):
    """Fails a task ``fail_times`` times, retrying it each time."""

    def generate_config(self) -> config.WorkerConfig:
        return config.WorkerConfig(
            name="retries-example",
            max_retries=2,  # retry() raises WorkerMaxRetries once run_count reaches 2
            max_tasks_per_run=EXPECTED_RUNS,
        )

    def work(self, task: objects.Task) -> str:
        if task.run_count < task.kwargs["fail_times"]:
            raise FlakyError(f"attempt {task.run_count} of {task.kwargs['name']} failed")
        return f"{task.kwargs['name']} succeeded after {task.run_count} retries"

    def on_success(self, task: objects.Task, returned_value: str) -> None:
        print(returned_value)

    def on_failure(self, task: objects.Task, exception: Exception) -> None:
        print(f"{task.kwargs['name']} failed: {exception}")
        # Back off: 0.1 s, 0.2 s, 0.4 s... retry() pushes the task again and ends this run.
        self.retry(task, consumable_from=time.time() + 0.1 * 2**task.run_count)

    def on_max_retries(self, task: objects.Task) -> None:
        print(f"{task.kwargs['name']} gave up after {task.run_count} retries")


def main() -> None:
    with RetryingWorker() as retrying:
        retrying.init_worker()
        retrying.purge_tasks()
        retrying.purge_dead_tasks()
        retrying.push_tasks(
            [{"name": "flaky", "fail_times": 1}, {"name": "broken", "fail_times": 99}]
        )
        retrying.work_loop()

        print(f"dead tasks: {retrying.number_of_dead_tasks()}")
        for task, dead in retrying.get_dead_tasks():
            name = task.kwargs["name"] if task is not None else "<undecodable>"
            print(f"dead: {name} (reason: {dead.reason}, deliveries: {dead.deliveries})")
        retrying.purge_dead_tasks()


if __name__ == "__main__":
    main()
