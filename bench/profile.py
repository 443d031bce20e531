"""Profiles of Sergeant's hot paths on Redis (cProfile), for the optimisation work.

``python -m bench --profile [--n N] [--output DIR]`` writes, for each scenario, a
``profile-<scenario>.prof`` (for snakeviz/pstats) and a ``profile-<scenario>.txt``
with the top functions by own time and by cumulative time.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import sys
import typing
from pathlib import Path

from sergeant.config import Connector, WorkerConfig
from sergeant.objects import Task
from sergeant.worker import Worker
from tests.servers import RedisServer

#: Functions listed per table in the text summary.
TOP = 25


class _ProfiledWorker(Worker):
    """A worker whose ``work`` only records the task's ``i``."""

    port = 0
    tasks_per_transaction = 1
    max_tasks = 0
    seen: typing.ClassVar[set[int]] = set()

    def generate_config(self) -> WorkerConfig:
        node = {"host": "127.0.0.1", "port": self.port, "password": None, "database": 0}
        return WorkerConfig(
            name="profile",
            connector=Connector(type="redis", params={"nodes": [node]}),
            max_tasks_per_run=self.max_tasks,
            tasks_per_transaction=self.tasks_per_transaction,
        )

    def work(self, task: Task) -> None:
        self.seen.add(task.kwargs["i"])


def _worker(port: int, tasks_per_transaction: int, max_tasks: int) -> _ProfiledWorker:
    attributes = {"port": port, "tasks_per_transaction": tasks_per_transaction}
    worker_class = type("Profiled", (_ProfiledWorker,), {**attributes, "max_tasks": max_tasks})
    worker: _ProfiledWorker = worker_class()
    worker.init_worker()
    worker.purge_tasks()
    return worker


def _fill(worker: Worker, n: int) -> None:
    for low in range(0, n, 10_000):
        worker.push_tasks([{"i": i} for i in range(low, min(n, low + 10_000))])


def _write(profiler: cProfile.Profile, output: Path, scenario: str) -> Path:
    profiler.dump_stats(str(output / f"profile-{scenario}.prof"))
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text).strip_dirs()
    text.write(f"== {scenario}: top {TOP} by own time (tottime)\n")
    stats.sort_stats("tottime").print_stats(TOP)
    text.write(f"== {scenario}: top {TOP} by cumulative time\n")
    stats.sort_stats("cumulative").print_stats(TOP)
    path = output / f"profile-{scenario}.txt"
    path.write_text(text.getvalue())
    return path


def profile_push_bulk(port: int, n: int, output: Path) -> Path:
    worker = _worker(port, 1, 0)
    kwargs_list = [{"i": i} for i in range(n)]
    profiler = cProfile.Profile()
    profiler.runcall(worker.push_tasks, kwargs_list)
    return _write(profiler, output, "push-bulk")


def profile_consume(port: int, n: int, per_pull: int, output: Path, scenario: str) -> Path:
    worker = _worker(port, per_pull, n)
    _fill(worker, n)
    profiler = cProfile.Profile()
    profiler.runcall(worker.work_loop)
    if len(worker.seen) != n:
        raise RuntimeError(f"{scenario}: {len(worker.seen)} distinct tasks ran, expected {n}")
    worker.seen.clear()
    return _write(profiler, output, scenario)


def main(n: int, output: Path) -> None:
    """Profile bulk push (n), batched at-least-once consume (n), one-by-one consume (n/5)."""
    output.mkdir(parents=True, exist_ok=True)
    server = RedisServer()
    server.start()
    try:
        written = [
            profile_push_bulk(server.port, n, output),
            profile_consume(server.port, n, 1000, output, "consume-batched"),
            profile_consume(server.port, max(1, n // 5), 1, output, "consume-one"),
        ]
    finally:
        server.close()
    for path in written:
        print(f"wrote {path}", file=sys.stderr)
