"""The Celery app used by ``celery_driver`` and by the ``celery worker`` it starts.

Settings come from the environment (the worker is a separate process):
``BENCH_REDIS_URL``, ``BENCH_EXPECTED`` (executions after which the result is
written) and ``BENCH_RESULT_KEY`` (where it is written, as JSON).
"""

from __future__ import annotations

import json
import os
import time

import _common
import redis
from celery import Celery

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
QUEUE = "bench-celery"

app = Celery("bench", broker=REDIS_URL)
app.conf.update(
    task_default_queue=QUEUE,
    task_ignore_result=True,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)

_seen: set[int] = set()
_state = {"executions": 0, "first": 0.0}
#: The worker's and Redis's CPU when the first task started (the solo pool runs tasks in
#: the worker's own process, so this process's rusage is the worker's).
_cpu: dict[str, float] = {}


@app.task(name="bench.record")
def record(i: int) -> None:
    """Record ``i``; after the expected count, write the result to Redis."""
    if not _state["executions"]:
        _cpu.update(_common.cpu_sample(redis.Redis.from_url(REDIS_URL)))
        _state["first"] = time.time()
    _seen.add(i)
    _state["executions"] += 1
    if _state["executions"] == int(os.environ.get("BENCH_EXPECTED", "0")):
        last = time.time()
        client = redis.Redis.from_url(REDIS_URL)
        report = {
            "first": _state["first"],
            "last": last,
            "distinct": len(_seen),
            "executions": _state["executions"],
            "cpu": _common.cpu_delta(_cpu, _common.cpu_sample(client)),
        }
        client.set(os.environ["BENCH_RESULT_KEY"], json.dumps(report))
