"""Driver for Dramatiq (Redis broker).

Push: ``actor.send`` per task (Dramatiq has no bulk enqueue, so bulk is the same
loop). Consume: a ``dramatiq.Worker`` with one thread in this process, with
``queue_prefetch`` 1 (one-by-one) or ``prefetch`` (batched), timed from
``start()`` until the N-th task has run.
"""

from __future__ import annotations

import threading
import time
import typing

import _common
import dramatiq
from dramatiq.brokers.redis import RedisBroker

QUEUE = "bench-dramatiq"
NAMESPACE = "bench-dramatiq"
_seen: set[int] = set()
_state = {"executions": 0, "expected": 0, "first": 0.0, "last": 0.0}
_done = threading.Event()


def setup(args: dict[str, typing.Any]) -> tuple[RedisBroker, typing.Any]:
    broker = RedisBroker(
        host=args["redis"]["host"], port=args["redis"]["port"], namespace=NAMESPACE
    )
    dramatiq.set_broker(broker)

    @dramatiq.actor(queue_name=QUEUE, max_retries=0)
    def record(i: int) -> None:
        if not _state["executions"]:
            _state["first"] = time.time()
        _seen.add(i)
        _state["executions"] += 1
        if _state["executions"] == _state["expected"]:
            _state["last"] = time.time()
            _done.set()

    broker.flush_all()
    return broker, record


def queued(args: dict[str, typing.Any]) -> int:
    return int(_common.redis_client(args).hlen(f"{NAMESPACE}:{QUEUE}.msgs"))


def run(args: dict[str, typing.Any]) -> dict[str, typing.Any]:
    broker, record = setup(args)
    n, workload = args["n"], args["workload"]
    client = _common.redis_client(args)
    if workload in ("push_one", "push_bulk"):
        cpu = _common.cpu_sample(client)
        started = time.perf_counter()
        for i in range(n):
            record.send(i)
        seconds = time.perf_counter() - started
        cpu = _common.cpu_delta(cpu, _common.cpu_sample(client))
        return _common.result(seconds, n, queued(args), cpu=cpu)
    if workload == "consume":
        for i in range(n):
            record.send(i)
        _state["expected"] = n
        worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100)
        worker.queue_prefetch = args.get("prefetch", 1)
        cpu = _common.cpu_sample(client)
        started = time.perf_counter()
        worker.start()
        finished = _done.wait(_common.WAIT_TIMEOUT_SECONDS)
        seconds = time.perf_counter() - started
        cpu = _common.cpu_delta(cpu, _common.cpu_sample(client))
        worker.stop()
        if not finished:
            raise TimeoutError("dramatiq worker did not finish")
        return _common.result(
            seconds,
            n,
            len(_seen),
            executions=_state["executions"],
            cpu=cpu,
            **_common.steady(_state["first"], _state["last"]),
        )
    raise ValueError(f"unknown workload {workload!r}")


if __name__ == "__main__":
    _common.emit(run(_common.read_args()))
