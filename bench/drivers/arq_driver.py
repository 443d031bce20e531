"""Driver for arq.

Push: ``enqueue_job`` awaited per task (one-by-one), or ``asyncio.gather`` over
chunks of 1,000 ``enqueue_job`` calls (bulk). Consume: an arq ``Worker`` in burst
mode with ``poll_delay=0``, ``max_jobs`` 1 (one-by-one) or ``prefetch`` (batched),
timed from ``main()`` to its return.
"""

from __future__ import annotations

import asyncio
import time
import typing

import _common
from arq import Worker, create_pool
from arq.connections import RedisSettings

QUEUE = "arq:queue"
GATHER_CHUNK = 1000
_seen: set[int] = set()
#: When the first task started and the latest one ended (``time.time()``).
_stamps = [0.0, 0.0]


async def record(ctx: dict[str, typing.Any], i: int) -> None:
    """The task: record ``i``."""
    if not _seen:
        _stamps[0] = time.time()
    _seen.add(i)
    _stamps[1] = time.time()


async def enqueue_all(pool: typing.Any, n: int) -> None:
    for low in range(0, n, GATHER_CHUNK):
        await asyncio.gather(
            *(pool.enqueue_job("record", i) for i in range(low, min(n, low + GATHER_CHUNK)))
        )


async def run(args: dict[str, typing.Any]) -> dict[str, typing.Any]:
    settings = RedisSettings(host=args["redis"]["host"], port=args["redis"]["port"])
    pool = await create_pool(settings)
    await pool.flushdb()
    n, workload = args["n"], args["workload"]
    # A plain client for INFO: sampling must not wait on the event loop.
    client = _common.redis_client(args)
    if workload in ("push_one", "push_bulk"):
        cpu = _common.cpu_sample(client)
        started = time.perf_counter()
        if workload == "push_bulk":
            await enqueue_all(pool, n)
        else:
            for i in range(n):
                await pool.enqueue_job("record", i)
        seconds = time.perf_counter() - started
        cpu = _common.cpu_delta(cpu, _common.cpu_sample(client))
        return _common.result(seconds, n, int(await pool.zcard(QUEUE)), cpu=cpu)
    if workload == "consume":
        await enqueue_all(pool, n)
        jobs = args.get("prefetch", 1)
        worker = Worker(
            functions=[record],  # type: ignore[list-item]
            redis_pool=pool,
            burst=True,
            poll_delay=0,
            max_jobs=jobs,
            handle_signals=False,
            log_results=False,
        )
        cpu = _common.cpu_sample(client)
        started = time.perf_counter()
        await worker.main()
        seconds = time.perf_counter() - started
        cpu = _common.cpu_delta(cpu, _common.cpu_sample(client))
        await worker.close()
        return _common.result(seconds, n, len(_seen), cpu=cpu, **_common.steady(*_stamps))
    raise ValueError(f"unknown workload {workload!r}")


if __name__ == "__main__":
    _common.emit(asyncio.run(run(_common.read_args())))
