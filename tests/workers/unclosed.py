"""A script that runs workers and never closes them: ``python -m tests.workers.unclosed``.

Its argument is a JSON list of ``[type, params]`` broker set-ups. On each broker it
runs short work loops (serial and threaded, with the timeout killers on), and a
threaded loop interrupted from outside (as a test runner's timeout does), then
returns without calling ``close()`` on anything. The process must exit by itself:
no thread the library starts may keep it alive.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import types
import typing

from sergeant import config
from sergeant.logging.logstash import BufferedLogstashHandler
from sergeant.objects import Task
from sergeant.worker import Worker
from tests.servers import free_port

__all__ = ["Interrupted", "UnclosedWorker", "main"]

QUEUE = "unclosed"
#: Tasks each bounded loop runs.
TASKS_PER_LOOP = 3


class Interrupted(BaseException):
    """Raised in the main thread by a timer signal, as a test runner's timeout does."""


class UnclosedWorker(Worker):
    """A no-op worker; its class attributes choose the broker and the loop."""

    CONNECTOR: typing.ClassVar[config.Connector]
    THREADS: typing.ClassVar[int] = 1
    TIMEOUT: typing.ClassVar[float] = 0.0
    LIMIT: typing.ClassVar[int] = TASKS_PER_LOOP

    def generate_config(self) -> config.WorkerConfig:
        # A log shipper to a closed port, never closed either: flushed at exit.
        shipper = BufferedLogstashHandler("127.0.0.1", free_port(), timeout=1.0)
        return config.WorkerConfig(
            name=QUEUE,
            connector=self.CONNECTOR,
            max_tasks_per_run=self.LIMIT,
            number_of_threads=self.THREADS,
            timeouts=config.Timeouts(timeout=self.TIMEOUT, grace_period=1.0),
            logging=config.Logging(handlers=[shipper]),
            block_seconds=0.1,
        )

    def work(self, task: Task) -> None:
        pass


def _on_timer(signum: int, frame: types.FrameType | None) -> None:
    raise Interrupted()


def _run(connector: config.Connector, threads: int, timeout: float, limit: int) -> Worker:
    """Push tasks and run one loop; a loop with no limit is interrupted after a while."""
    worker_class: type[UnclosedWorker] = type(
        "Unclosed",
        (UnclosedWorker,),
        {"CONNECTOR": connector, "THREADS": threads, "TIMEOUT": timeout, "LIMIT": limit},
    )
    worker = worker_class()
    worker.init_worker()
    worker.push_tasks([{}] * TASKS_PER_LOOP)
    if limit:
        worker.work_loop()
        return worker
    signal.signal(signal.SIGALRM, _on_timer)
    signal.setitimer(signal.ITIMER_REAL, 1.0)
    try:
        worker.work_loop()
    except Interrupted:
        pass
    return worker


def main(argv: list[str]) -> int:
    """Run every loop on every broker of ``argv[0]``; keep the workers, close nothing."""
    kept = []
    for kind, params in json.loads(argv[0]):
        connector = config.Connector(type=kind, params=params)
        kept.append(_run(connector, threads=1, timeout=5.0, limit=TASKS_PER_LOOP))
        kept.append(_run(connector, threads=4, timeout=5.0, limit=TASKS_PER_LOOP))
        kept.append(_run(connector, threads=4, timeout=0.0, limit=0))
    names = sorted(thread.name for thread in threading.enumerate())
    print(f"{len(kept)} loops ended; threads alive: {', '.join(names)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
