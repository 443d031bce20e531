"""``sergeant demo``: a producer and two workers on the embedded SQLite broker, no server."""

from __future__ import annotations

import collections
import multiprocessing
import os
import tempfile
import time
import typing

import click

from sergeant import config
from sergeant.objects import Task
from sergeant.worker import Worker

__all__ = ["DemoWorker", "demo"]

DEMO_QUEUE = "demo"


def demo_file_path() -> str:
    """The SQLite file the demo uses (its own, next to the default broker file)."""
    return os.path.join(tempfile.gettempdir(), "sergeant_demo.sqlite3")


class DemoWorker(Worker):
    """Finds whether ``n`` is prime; stops once the queue has been empty for a second."""

    def __init__(self) -> None:
        super().__init__()
        self.results: list[tuple[int, bool, str]] = []

    def generate_config(self) -> config.WorkerConfig:
        return config.WorkerConfig(
            name=DEMO_QUEUE,
            connector=config.Connector(type="local", params={"file_path": demo_file_path()}),
            tasks_per_transaction=10,
            starvation=config.Starvation(time_with_no_tasks=1),
            block_seconds=0.2,
        )

    def work(self, task: Task) -> bool:
        time.sleep(0.005)  # stands in for I/O, so the workers visibly share the load
        n: int = task.kwargs["n"]
        return n > 1 and all(n % d for d in range(2, int(n**0.5) + 1))

    def on_success(self, task: Task, returned_value: typing.Any) -> None:
        self.results.append((task.kwargs["n"], bool(returned_value), task.kwargs.get("tag", "")))

    def on_starvation(self, time_with_no_tasks: int) -> None:
        self.stop()


def _run_worker(results: multiprocessing.Queue[tuple[int, list[tuple[int, bool, str]]]]) -> None:
    with DemoWorker() as worker:
        worker.init_worker()
        worker.work_loop()
        results.put((os.getpid(), worker.results))


@click.command()
@click.option("--tasks", "number_of_tasks", default=200, show_default=True, help="Tasks to push.")
@click.option(
    "--workers", "number_of_workers", default=2, show_default=True, help="Worker processes."
)
def demo(number_of_tasks: int, number_of_workers: int) -> None:
    """Push tasks to the embedded SQLite broker and watch worker processes run them.

    Needs no server. Example: sergeant demo --tasks 500 --workers 3
    """
    producer = DemoWorker()
    producer.init_broker()
    producer.purge_tasks()
    started = time.monotonic()
    producer.push_tasks([{"n": n} for n in range(number_of_tasks)])
    producer.push_task({"n": 97, "tag": "high priority"}, priority="HIGH")
    producer.push_task({"n": 101, "tag": "delayed 1s"}, consumable_from=time.time() + 1)
    total = number_of_tasks + 2
    click.echo(f"pushed {total} tasks to queue {DEMO_QUEUE!r} in {demo_file_path()}")

    context = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue[tuple[int, list[tuple[int, bool, str]]]] = context.Queue()
    processes = [
        context.Process(target=_run_worker, args=(results,)) for _ in range(number_of_workers)
    ]
    for process in processes:
        process.start()
    per_worker = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=30)

    done = collections.Counter[int]()
    for pid, worker_results in per_worker:
        click.echo(f"worker pid {pid}: ran {len(worker_results)} tasks")
        done.update(n for n, _, _ in worker_results)
        for n, _, tag in worker_results:
            if tag:
                click.echo(f"  ran n={n} ({tag})")
    primes = sorted(
        {n for _, worker_results in per_worker for n, prime, _ in worker_results if prime}
    )
    click.echo(
        f"{sum(done.values())} of {total} tasks ran in {time.monotonic() - started:.1f}s; "
        f"{len(primes)} primes below {number_of_tasks}; "
        f"{producer.number_of_enqueued_tasks(include_delayed=True)} left in the queue"
    )
    if sum(done.values()) != total:
        raise SystemExit(1)
