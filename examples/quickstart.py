"""Quick start: a worker that fetches nothing and says hello, on the embedded SQLite broker.

Push tasks:   python examples/quickstart.py push 100
Run workers:  sergeant run examples.quickstart:HelloWorker --workers 2
"""

from __future__ import annotations

import sys

from sergeant import config, objects, worker


class HelloWorker(worker.Worker):
    """Greets whoever a task names."""

    def generate_config(self) -> config.WorkerConfig:
        return config.WorkerConfig(name="hello", tasks_per_transaction=10, max_tasks_per_run=1000)

    def work(self, task: objects.Task) -> str:
        return f"hello, {task.kwargs['name']}"


if __name__ == "__main__":
    producer = HelloWorker()
    producer.init_broker()
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    producer.push_tasks([{"name": f"user-{i}"} for i in range(count)])
    print(f"pushed {count} tasks; {producer.number_of_enqueued_tasks()} waiting")
