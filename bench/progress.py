"""What ``Worker.set_progress`` costs a task: ``python -m bench.progress``.

One worker runs tasks that loop ``--calls`` times (default 10,000) over a small
body, ``sum(range(k))`` for each ``k`` of ``--sizes``; the same tasks run with and
without a ``set_progress(i / calls, message)`` call per iteration, alternating,
``--rounds`` times. Each task's run time is timed inside ``work`` (the throttled
broker writes made during the loop included; the one pending write made when the
task is settled is not). It prints, per body size, the median run time of both
and their ratio (the target is under 1.05), and the cost of one call.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import typing
import uuid

from sergeant.config import Connector, WorkerConfig
from sergeant.objects import Task
from sergeant.worker import Worker


class _Timed(Worker):
    """Loops over the task's body, reporting progress when asked; keeps each run time."""

    CONNECTOR: typing.ClassVar[Connector]

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def generate_config(self) -> WorkerConfig:
        return WorkerConfig(name="bench-progress", connector=self.CONNECTOR, max_tasks_per_run=1)

    def work(self, task: Task) -> None:
        calls, size, report = task.kwargs["calls"], task.kwargs["size"], task.kwargs["report"]
        body = range(size)
        started = time.perf_counter()
        if report:
            set_progress = self.set_progress
            for step in range(calls):
                sum(body)
                set_progress(step / calls, "working")
        else:
            for step in range(calls):
                sum(body)
                step / calls  # the same division as the reporting loop
        self.times.append(time.perf_counter() - started)


def _connector(kind: str, directory: str) -> Connector:
    if kind == "local":
        return Connector(type="local", params={"file_path": f"{directory}/bench.sqlite3"})
    return Connector(type="memory", params={"name": f"bench-{uuid.uuid4().hex[:8]}"})


def _run(worker: _Timed, calls: int, size: int, report: bool) -> float:
    worker.push_task({"calls": calls, "size": size, "report": report})
    worker.work_loop()
    return worker.times.pop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.progress", description=__doc__)
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--broker", choices=["memory", "local"], default="memory")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as directory:
        worker_class = type("Timed", (_Timed,), {"CONNECTOR": _connector(args.broker, directory)})
        worker: _Timed = worker_class()
        worker.init_worker()
        print(f"{args.calls:,} iterations per task, broker {args.broker}, {args.rounds} rounds")
        print("| body | without (ms) | with set_progress (ms) | ratio | per call (ns) |")
        print("|---|---|---|---|---|")
        for size in args.sizes:
            _run(worker, args.calls, size, True)  # warm up
            without, with_ = [], []
            for _ in range(args.rounds):
                without.append(_run(worker, args.calls, size, False))
                with_.append(_run(worker, args.calls, size, True))
            base, reported = statistics.median(without), statistics.median(with_)
            per_call = (reported - base) / args.calls * 1e9
            print(
                f"| `sum(range({size}))` | {base * 1e3:.2f} | {reported * 1e3:.2f} "
                f"| {reported / base:.3f} | {per_call:.0f} |"
            )
        worker.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
