"""Quick start: a worker that says hello, on the embedded SQLite broker (no server).

Round trip:   python examples/quickstart.py          (push 3 tasks, run them, exit)
Push tasks:   python examples/quickstart.py push 100
Run workers:  sergeant run examples.quickstart:HelloWorker --workers 2
"""

from __future__ import annotations

import sys
import typing

from sergeant import config, objects, worker


class HelloWorker(worker.Worker):
    """Greets whoever a task names."""

    def generate_config(self) -> config.WorkerConfig:
        # No connector given: the embedded SQLite broker, a file in the temp directory.
        return config.WorkerConfig(name="hello", tasks_per_transaction=10, max_tasks_per_run=1000)

    def work(self, task: objects.Task) -> str:
        return f"hello, {task.kwargs['name']}"

    def on_success(self, task: objects.Task, returned_value: typing.Any) -> None:
        print(returned_value, flush=True)


def push(count: int) -> None:
    """Push ``count`` tasks for ``sergeant run`` to pick up."""
    producer = HelloWorker()
    producer.init_broker()
    producer.push_tasks([{"name": f"user-{i}"} for i in range(count)])
    print(f"pushed {count} tasks; {producer.number_of_enqueued_tasks()} waiting")


def round_trip(count: int) -> None:
    """Push ``count`` tasks, then run one worker loop that ends after ``count`` tasks."""
    with HelloWorker() as hello:
        hello.config = hello.config.replace(max_tasks_per_run=count)
        hello.init_worker()
        hello.purge_tasks()  # start from an empty queue
        hello.push_tasks([{"name": f"user-{i}"} for i in range(count)])
        summary = hello.work_loop()
        print(f"ran {summary['tasks_done']} tasks")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "push":
        push(int(sys.argv[2]) if len(sys.argv) > 2 else 10)
    else:
        round_trip(3)
