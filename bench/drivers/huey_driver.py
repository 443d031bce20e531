"""Driver for Huey (``RedisHuey``).

Push: calling the task enqueues it (Huey has no bulk enqueue, so bulk is the same
loop). Consume: a Huey consumer with one thread worker in this process, timed
from ``start()`` until the N-th task has run. No batched pull exists.
"""

from __future__ import annotations

import threading
import time
import typing

import _common
from huey import RedisHuey

_seen: set[int] = set()
_state = {"executions": 0, "expected": 0, "first": 0.0, "last": 0.0}
_done = threading.Event()


def setup(args: dict[str, typing.Any]) -> tuple[RedisHuey, typing.Any]:
    huey = RedisHuey(
        "bench-huey", host=args["redis"]["host"], port=args["redis"]["port"], results=False
    )

    @huey.task()
    def record(i: int) -> None:
        if not _state["executions"]:
            _state["first"] = time.time()
        _seen.add(i)
        _state["executions"] += 1
        if _state["executions"] == _state["expected"]:
            _state["last"] = time.time()
            _done.set()

    huey.flush()
    return huey, record


def run(args: dict[str, typing.Any]) -> dict[str, typing.Any]:
    huey, record = setup(args)
    n, workload = args["n"], args["workload"]
    client = _common.redis_client(args)
    if workload in ("push_one", "push_bulk"):
        cpu = _common.cpu_sample(client)
        started = time.perf_counter()
        for i in range(n):
            record(i)
        seconds = time.perf_counter() - started
        cpu = _common.cpu_delta(cpu, _common.cpu_sample(client))
        return _common.result(seconds, n, huey.pending_count(), cpu=cpu)
    if workload == "consume":
        for i in range(n):
            record(i)
        _state["expected"] = n
        consumer = huey.create_consumer(workers=1, periodic=False, initial_delay=0.001)
        cpu = _common.cpu_sample(client)
        started = time.perf_counter()
        consumer.start()
        finished = _done.wait(_common.WAIT_TIMEOUT_SECONDS)
        seconds = time.perf_counter() - started
        cpu = _common.cpu_delta(cpu, _common.cpu_sample(client))
        consumer.stop(graceful=True)
        if not finished:
            raise TimeoutError("huey consumer did not finish")
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
