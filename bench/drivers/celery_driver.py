"""Driver for Celery (Redis transport).

Push: ``apply_async`` per task (one-by-one), or ``apply_async`` in a loop over one
shared producer connection (bulk: Celery has no bulk enqueue). Consume: a real
``celery worker`` process with the solo pool and ``--prefetch-multiplier``
(1 for one-by-one, ``prefetch`` for batched); the time is from its first task's
start to its last task's end, so the worker's boot is not counted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import typing

import _common

HERE = os.path.dirname(os.path.abspath(__file__))


def setup(args: dict[str, typing.Any]) -> typing.Any:
    os.environ["BENCH_REDIS_URL"] = f"redis://{args['redis']['host']}:{args['redis']['port']}/0"
    import celery_app

    return celery_app


def push_all(module: typing.Any, n: int) -> None:
    with module.app.producer_or_acquire() as producer:
        for i in range(n):
            module.record.apply_async((i,), producer=producer)


def queued(args: dict[str, typing.Any], module: typing.Any) -> int:
    return int(_common.redis_client(args).llen(module.QUEUE))


def push(args: dict[str, typing.Any], bulk: bool) -> dict[str, typing.Any]:
    module = setup(args)
    _common.redis_client(args).delete(module.QUEUE)
    n, client = args["n"], _common.redis_client(args)
    cpu = _common.cpu_sample(client)
    started = time.perf_counter()
    if bulk:
        push_all(module, n)
    else:
        for i in range(n):
            module.record.apply_async((i,))
    seconds = time.perf_counter() - started
    cpu = _common.cpu_delta(cpu, _common.cpu_sample(client))
    return _common.result(seconds, n, queued(args, module), cpu=cpu)


def consume(args: dict[str, typing.Any]) -> dict[str, typing.Any]:
    module = setup(args)
    client = _common.redis_client(args)
    client.delete(module.QUEUE)
    n = args["n"]
    push_all(module, n)
    result_key = "bench:celery:result"
    client.delete(result_key)
    env = {
        **os.environ,
        "BENCH_EXPECTED": str(n),
        "BENCH_RESULT_KEY": result_key,
        "PYTHONPATH": HERE,
    }
    command = [
        sys.executable, "-m", "celery", "-A", "celery_app", "worker",
        "--pool=solo", "--concurrency=1", f"--prefetch-multiplier={args.get('prefetch', 1)}",
        "-Q", module.QUEUE, "--without-gossip", "--without-mingle", "--without-heartbeat",
        "--loglevel=WARNING",
    ]  # fmt: skip
    spawned = time.time()
    worker = subprocess.Popen(
        command, cwd=HERE, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        report = json.loads(_common.wait_for(lambda: client.get(result_key), "celery worker"))
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
    # Already first task to last: the steady state is the primary figure here.
    seconds = report["last"] - report["first"]
    return _common.result(
        seconds,
        n,
        report["distinct"],
        executions=report["executions"],
        cpu=report["cpu"],
        steady_seconds=seconds,
        spawn_seconds=report["last"] - spawned,
    )


def main() -> None:
    args = _common.read_args()
    workload = args["workload"]
    if workload in ("push_one", "push_bulk"):
        _common.emit(push(args, bulk=workload == "push_bulk"))
    elif workload == "consume":
        _common.emit(consume(args))
    else:
        raise ValueError(f"unknown workload {workload!r}")


if __name__ == "__main__":
    main()
