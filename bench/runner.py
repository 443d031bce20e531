"""Runs one driver in its library's own Python and checks what it reports."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import tempfile
import time
import typing
from pathlib import Path

from bench.cpu import RunCpu, of_result, whole_run_redis
from bench.libraries import DRIVERS_DIR, Library

#: A driver that runs longer than this is stopped and its run recorded as failed.
RUN_TIMEOUT_SECONDS = 1800.0
#: Shards of the sharded cluster broker: one per primary of the three-node cluster.
CLUSTER_SHARDS = 3


@dataclasses.dataclass
class Brokers:
    """Where the private servers listen (Mongo and the cluster only when a library needs them)."""

    redis_port: int
    mongo_port: int | None = None
    cluster_url: str | None = None
    scratch: Path = dataclasses.field(default_factory=lambda: Path(tempfile.mkdtemp()))

    def connector(self, broker: str, run_id: str) -> dict[str, typing.Any]:
        """A Sergeant ``Connector`` (type and params) for one run on ``broker``."""
        if broker == "redis":
            node = {"host": "127.0.0.1", "port": self.redis_port, "password": None, "database": 0}
            return {"type": "redis", "params": {"nodes": [node]}}
        if broker in ("redis-cluster", "redis-cluster-sharded"):
            if self.cluster_url is None:
                raise ValueError(f"the {broker} broker needs a running cluster (cluster_url)")
            params: dict[str, typing.Any] = {"url": self.cluster_url}
            if broker == "redis-cluster-sharded":
                params["shards"] = CLUSTER_SHARDS
            return {"type": "redis", "params": params}
        if broker == "local":
            return {"type": "local", "params": {"file_path": str(self.scratch / f"{run_id}.db")}}
        if broker == "mongo":
            node = {"host": "127.0.0.1", "port": self.mongo_port, "replica_set": None}
            # MongoDB database names stop at 63 bytes: a digest of the run id fits.
            database = "bench_" + hashlib.sha1(run_id.encode()).hexdigest()[:20]
            return {"type": "mongo", "params": {"nodes": [node], "database": database}}
        raise ValueError(f"unknown broker {broker!r}")


@dataclasses.dataclass
class Run:
    """One measured run: what the driver reported, and whether it checked out."""

    library: str
    workload: str
    round: int
    n: int
    ok: bool
    seconds: float = 0.0
    rate: float | None = None
    distinct: int | None = None
    error: str = ""
    extra: dict[str, typing.Any] = dataclasses.field(default_factory=dict)

    def value(self, field: str = "") -> float | None:
        """The primary figure (rate, p50 latency, RSS or RSS growth), or ``extra[field]``."""
        if field:
            found = self.extra.get(field)
            return float(found) if found is not None else None
        if self.workload == "latency":
            return self.value("p50_ms")
        if self.workload == "idle_rss":
            return self.value("rss_mb")
        if self.workload == "memory_flat":
            return self.value("growth_mib")
        return self.rate

    def cpu_per_task(self) -> RunCpu:
        """CPU microseconds per task (worker, Redis, sum) and steady/spawn-to-last rates."""
        return of_result(self.n, self.seconds, self.extra)


def redis_cpu_now(port: int) -> dict[str, float]:
    """The private Redis server's ``used_cpu_*`` seconds so far (``INFO cpu``)."""
    import redis

    info = redis.Redis(host="127.0.0.1", port=port).info("cpu")
    return {key: float(value) for key, value in info.items() if key.startswith("used_cpu_")}


def driver_args(
    library: Library, workload: str, n: int, brokers: Brokers, run_id: str
) -> dict[str, typing.Any]:
    """The JSON arguments of one driver run."""
    args = {
        **library.workloads[workload],
        "n": n,
        "queue": f"bench-{run_id}",
        "redis": {"host": "127.0.0.1", "port": brokers.redis_port},
        "connector": brokers.connector(library.broker, run_id),
    }
    if library.source is not None:
        args["sergeant_tree"] = str(library.source)
    return args


def _driver_env(library: Library) -> dict[str, str]:
    # The original Sergeant must import from its own venv, never from this checkout;
    # a library with a source tree imports that tree's package first.
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    if library.source is not None:
        env["PYTHONPATH"] = str(library.source)
    return env


def run_driver(library: Library, args: dict[str, typing.Any]) -> dict[str, typing.Any]:
    """Run the library's driver; return its JSON result (raises on failure)."""
    command = [str(library.python), str(DRIVERS_DIR / library.driver), json.dumps(args)]
    completed = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_SECONDS,
        env=_driver_env(library),
        cwd=tempfile.gettempdir(),
    )
    lines = completed.stdout.strip().splitlines()
    if completed.returncode != 0 or not lines:
        tail = "\n".join(completed.stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"exit {completed.returncode}: {tail}")
    result: dict[str, typing.Any] = json.loads(lines[-1])
    return result


def measure(library: Library, workload: str, n: int, brokers: Brokers, round_number: int) -> Run:
    """Run one workload of one library once, and check that exactly ``n`` tasks moved."""
    run_id = f"{library.name}-{workload}-{round_number}-{time.time_ns()}"
    args = driver_args(library, workload, n, brokers, run_id)
    run = Run(library.name, workload, round_number, n, ok=False)
    before = redis_cpu_now(brokers.redis_port)
    try:
        result = run_driver(library, args)
    except (RuntimeError, subprocess.TimeoutExpired, ValueError) as exc:
        run.error = str(exc)
        return run
    # The whole driver run, fill and start-up included: context for the driver's own
    # figure, which covers only its timed interval.
    result["redis_cpu_whole_run"] = whole_run_redis(before, redis_cpu_now(brokers.redis_port))
    run.seconds = float(result.pop("seconds"))
    run.distinct = result.pop("distinct")
    result.pop("n", None)
    result.pop("pid", None)
    run.extra = result
    if workload == "idle_rss":
        run.ok = "rss_mb" in result
    else:
        run.ok = run.distinct == n
        if not run.ok:
            run.error = f"distinct {run.distinct} != n {n}"
        elif workload == "memory_flat" and "growth_mib" not in result:
            run.ok, run.error = False, "no RSS samples"
    if workload != "latency" and workload != "idle_rss" and run.seconds > 0:
        run.rate = n / run.seconds
    return run
