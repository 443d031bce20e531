"""The raw redis-py ceiling: the same pickled payloads Sergeant pushes, moved by plain commands.

Workloads: ``push_one`` (RPUSH, one round trip per item), ``push_pipelined``
(pipelined RPUSH, one item per command), ``push_bulk`` (RPUSH of ``batch`` items per
command), ``consume_one`` (LPOP, one round trip per item) and ``consume_batched``
(LPOP with a count of ``batch``). Runs in this project's environment, so the
payloads come from this project's encoder.
"""

from __future__ import annotations

import time
import typing

import _common

from sergeant.encoder import Encoder
from sergeant.objects import Task

QUEUE = "bench:raw"


def payloads(n: int) -> list[bytes]:
    return Encoder("pickle", None).encode_many([Task(kwargs={"i": i}) for i in range(n)])


def push(client: typing.Any, items: list[bytes], batch: int) -> None:
    for low in range(0, len(items), batch):
        client.rpush(QUEUE, *items[low : low + batch])


def timed_push(client: typing.Any, items: list[bytes], workload: str, batch: int) -> float:
    started = time.perf_counter()
    if workload == "push_one":
        for item in items:
            client.rpush(QUEUE, item)
    elif workload == "push_pipelined":
        pipe = client.pipeline(transaction=False)
        for low in range(0, len(items), batch):
            for item in items[low : low + batch]:
                pipe.rpush(QUEUE, item)
            pipe.execute()
    elif workload == "push_bulk":
        push(client, items, batch)
    else:
        raise ValueError(f"unknown workload {workload!r}")
    return time.perf_counter() - started


def timed_pop(client: typing.Any, n: int, workload: str, batch: int) -> tuple[float, list[bytes]]:
    popped: list[bytes] = []
    started = time.perf_counter()
    if workload == "consume_one":
        for _ in range(n):
            popped.append(client.lpop(QUEUE))
    elif workload == "consume_batched":
        while len(popped) < n:
            popped.extend(client.lpop(QUEUE, batch) or [])
    else:
        raise ValueError(f"unknown workload {workload!r}")
    return time.perf_counter() - started, popped


def run(args: dict[str, typing.Any]) -> dict[str, typing.Any]:
    client = _common.redis_client(args)
    client.delete(QUEUE)
    n, batch, workload = args["n"], args.get("batch", 1000), args["workload"]
    items = payloads(n)
    if workload.startswith("consume"):
        push(client, items, batch)
        cpu = _common.cpu_sample(client)
        seconds, popped = timed_pop(client, n, workload, batch)
        cpu = _common.cpu_delta(cpu, _common.cpu_sample(client))
        distinct = len(set(popped))
    else:
        cpu = _common.cpu_sample(client)
        seconds = timed_push(client, items, workload, batch)
        cpu = _common.cpu_delta(cpu, _common.cpu_sample(client))
        distinct = client.llen(QUEUE)
    client.delete(QUEUE)
    return _common.result(seconds, n, distinct, cpu=cpu)


if __name__ == "__main__":
    _common.emit(run(_common.read_args()))
