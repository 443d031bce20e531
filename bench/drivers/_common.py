"""Helpers shared by every driver: arguments in, one JSON result line out, timing."""

from __future__ import annotations

import json
import math
import os
import resource
import sys
import time
import typing

#: How long a driver waits for a worker it started before giving up (seconds).
WAIT_TIMEOUT_SECONDS = 900.0


def read_args() -> dict[str, typing.Any]:
    """The JSON object passed as the first command-line argument."""
    args: dict[str, typing.Any] = json.loads(sys.argv[1])
    return args


def emit(result: dict[str, typing.Any]) -> None:
    """Print the result as one JSON line (the harness reads the last line)."""
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


def result(
    seconds: float, n: int, distinct: int | None, **extra: typing.Any
) -> dict[str, typing.Any]:
    """The result object every driver emits."""
    return {"seconds": seconds, "n": n, "distinct": distinct, "pid": os.getpid(), **extra}


#: ``INFO cpu`` fields (seconds): the whole server, and its main thread where Redis has it.
REDIS_CPU_FIELDS = (
    "used_cpu_user",
    "used_cpu_sys",
    "used_cpu_user_main_thread",
    "used_cpu_sys_main_thread",
)


def own_cpu() -> dict[str, float]:
    """This process's user and system CPU seconds so far (every thread)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"worker_user": usage.ru_utime, "worker_sys": usage.ru_stime}


def redis_cpu(client: typing.Any) -> dict[str, float]:
    """The Redis server's CPU seconds so far (``INFO cpu``), as ``redis_*`` fields.

    ``client`` may be a list of clients, one per primary of a cluster: the fields are
    then their sums, and ``redis_p<i>_user``/``redis_p<i>_sys`` each primary's own.
    """
    clients = client if isinstance(client, list) else [client]
    found: dict[str, float] = {}
    for index, one in enumerate(clients):
        info = one.info("cpu")
        for key in REDIS_CPU_FIELDS:
            if key in info:
                name = "redis_" + key.removeprefix("used_cpu_")
                found[name] = found.get(name, 0.0) + float(info[key])
        if len(clients) > 1:
            found[f"redis_p{index}_user"] = float(info["used_cpu_user"])
            found[f"redis_p{index}_sys"] = float(info["used_cpu_sys"])
    return found


def cpu_sample(client: typing.Any | None) -> dict[str, float]:
    """This process's CPU and, given a client of the server the work goes through, Redis's."""
    sample = own_cpu()
    if client is not None:
        sample.update(redis_cpu(client))
    return sample


def cpu_delta(start: dict[str, float], end: dict[str, float]) -> dict[str, float]:
    """CPU seconds spent between two samples, field by field."""
    return {key: end[key] - start[key] for key in start if key in end}


def steady(first: float, last: float) -> dict[str, float]:
    """The first task's start to the last one's end (seconds), as a result field."""
    return {"steady_seconds": last - first} if last > first else {}


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile of ``values`` (``fraction`` in 0..1)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def latency_result(latencies: list[float], n: int, distinct: int) -> dict[str, typing.Any]:
    """A latency result: p50/p99/max of push-to-start delays, in milliseconds."""
    ms = [value * 1000.0 for value in latencies]
    return result(
        0.0,
        n,
        distinct,
        p50_ms=percentile(ms, 0.50),
        p99_ms=percentile(ms, 0.99),
        max_ms=max(ms),
    )


def redis_client(args: dict[str, typing.Any]) -> typing.Any:
    """A redis-py client for the benchmark's private server."""
    import redis

    return redis.Redis(host=args["redis"]["host"], port=args["redis"]["port"])


def primary_clients(url: str) -> list[typing.Any]:
    """One redis-py client per node of a ``redis+cluster://`` URL (the benchmark's
    cluster names every primary, and has no replicas)."""
    import urllib.parse

    import redis

    clients = []
    for address in urllib.parse.urlsplit(url).netloc.rpartition("@")[2].split(","):
        host, _, port = address.rpartition(":")
        clients.append(redis.Redis(host=host, port=int(port)))
    return clients


def wait_for(
    predicate: typing.Callable[[], typing.Any], what: str, interval: float = 0.005
) -> typing.Any:
    """Poll ``predicate`` until it returns something truthy; return it."""
    deadline = time.monotonic() + WAIT_TIMEOUT_SECONDS
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {WAIT_TIMEOUT_SECONDS}s waiting for {what}")
        time.sleep(interval)


def rss_of(pid: int) -> float:
    """Resident set size of a process, in MiB."""
    import psutil

    return float(psutil.Process(pid).memory_info().rss) / (1024 * 1024)
