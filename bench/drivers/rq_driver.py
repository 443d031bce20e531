"""Driver for RQ.

Push: ``Queue.enqueue`` per task, or ``Queue.enqueue_many`` (one pipeline) in
bulk. Consume: ``SimpleWorker.work(burst=True)`` in this process (RQ has no
batched pull, so only one-by-one is measured), timed from the call to its return.
"""

from __future__ import annotations

import time
import typing

import _common
from rq import Queue, SimpleWorker
from rq_tasks import record, seen, stamps

QUEUE = "bench-rq"


def queue_for(args: dict[str, typing.Any]) -> Queue:
    queue = Queue(QUEUE, connection=_common.redis_client(args))
    queue.empty()
    return queue


def enqueue_many(queue: Queue, n: int, chunk: int = 10_000) -> None:
    for low in range(0, n, chunk):
        batch = [Queue.prepare_data(record, args=(i,)) for i in range(low, min(n, low + chunk))]
        queue.enqueue_many(batch)


def run(args: dict[str, typing.Any]) -> dict[str, typing.Any]:
    queue, n, workload = queue_for(args), args["n"], args["workload"]
    client = queue.connection
    if workload == "push_one":
        cpu = _common.cpu_sample(client)
        started = time.perf_counter()
        for i in range(n):
            queue.enqueue(record, i)
        seconds = time.perf_counter() - started
        cpu = _common.cpu_delta(cpu, _common.cpu_sample(client))
        return _common.result(seconds, n, queue.count, cpu=cpu)
    if workload == "push_bulk":
        batch = [Queue.prepare_data(record, args=(i,)) for i in range(n)]
        cpu = _common.cpu_sample(client)
        started = time.perf_counter()
        queue.enqueue_many(batch)
        seconds = time.perf_counter() - started
        cpu = _common.cpu_delta(cpu, _common.cpu_sample(client))
        return _common.result(seconds, n, queue.count, cpu=cpu)
    if workload == "consume":
        enqueue_many(queue, n)
        worker = SimpleWorker([queue], connection=client)
        cpu = _common.cpu_sample(client)
        started = time.perf_counter()
        worker.work(burst=True, logging_level="WARNING")
        seconds = time.perf_counter() - started
        cpu = _common.cpu_delta(cpu, _common.cpu_sample(client))
        return _common.result(seconds, n, len(seen), cpu=cpu, **_common.steady(*stamps))
    raise ValueError(f"unknown workload {workload!r}")


if __name__ == "__main__":
    _common.emit(run(_common.read_args()))
