"""What runs: the libraries, their workloads, and each run's arguments and task count.

A *workload* is a row of the report (``push_bulk``, ``consume_batched``...); a
library maps the workloads it supports to the driver options that implement them.
"""

from __future__ import annotations

import dataclasses
import enum
import typing
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
DRIVERS_DIR = BENCH_DIR / "drivers"
PEERS_VENV = BENCH_DIR / ".peers-venv"
SERGEANT027_VENV = BENCH_DIR / ".sergeant027-venv"


class Metric(enum.Enum):
    """What a workload measures, and which way is better."""

    RATE = "tasks/s"  # higher is better
    LATENCY = "ms"  # p50 and p99, lower is better
    RSS = "MiB"  # lower is better


@dataclasses.dataclass(frozen=True)
class Workload:
    """One row of the report."""

    name: str
    title: str
    metric: Metric = Metric.RATE


WORKLOADS: tuple[Workload, ...] = (
    Workload("push_one", "push one-by-one"),
    Workload("push_pipelined", "push, pipelined 1 item/command (raw only)"),
    Workload("push_bulk", "push bulk"),
    Workload("consume_one", "consume one-by-one"),
    Workload("consume_one_no_prefetch", "consume one-by-one, prefetch off (ours)"),
    Workload("consume_batched", "consume batched (ours: at-least-once, defaults)"),
    Workload("consume_batched_amo", "consume batched, at-most-once"),
    Workload("consume_batched_no_prefetch", "consume batched, at-least-once, prefetch off (ours)"),
    Workload(
        "consume_batched_rate_limit",
        "consume batched, at-least-once, a rate_limit that never binds (ours)",
    ),
    Workload("consume_procs_1", "batched consume, 1 process"),
    Workload("consume_procs_2", "batched consume, 2 processes"),
    Workload("consume_procs_4", "batched consume, 4 processes"),
    Workload("latency", "pickup latency, idle worker", Metric.LATENCY),
    Workload("idle_rss", "idle worker RSS", Metric.RSS),
    Workload("memory_flat", "RSS growth over N tasks, one worker (ours only)", Metric.RSS),
    Workload(
        "consume_batched_groups",
        "consume, batched, over 1,000 groups (ours; group_concurrency not binding)",
    ),
    Workload("progress_off", "loop steps in long tasks, no set_progress (ours; steps/s)"),
    Workload("progress_on", "the same loop, set_progress at every step (ours; steps/s)"),
)
WORKLOADS_BY_NAME = {workload.name: workload for workload in WORKLOADS}

#: Tasks pulled per round trip in the batched workloads (Sergeant's tasks_per_transaction).
BATCH = 1000
#: ``RateLimit(tasks=...)`` per second of ``consume_batched_rate_limit``: far above any rate.
RATE_LIMIT_NOT_BINDING = 100_000_000
#: Groups of the consume_batched_groups row (task i is in group i % GROUPS).
GROUPS = 1000
#: The progress rows: tasks of PROGRESS_STEPS loop steps, each ``sum(range(1000))``.
PROGRESS_TASKS, PROGRESS_STEPS = 5, 10_000


@dataclasses.dataclass(frozen=True)
class Sizes:
    """Task counts: ``n`` by default, smaller where a library or broker is slow."""

    n: int = 100_000
    push_one_n: int = 10_000
    peer_push_n: int = 20_000
    peer_consume_n: int = 5_000
    sqlite_n: int = 20_000
    mongo_n: int = 2_000
    latency_n: int = 1_000
    memory_n: int = 1_000_000
    #: Batched consumes of the fast libraries on Redis (one server or the cluster, so
    #: their CPU per task compares like for like): enough tasks that what a run does
    #: once (first pull, last ack) is far below 5% of it.
    batched_n: int = 1_000_000


#: Who runs ``batched_n`` tasks in the batched consumes (peers keep their caps).
FAST_GROUPS = ("ours", "original", "ceiling")


@dataclasses.dataclass(frozen=True)
class Library:
    """A library under test: its Python, its driver, and its workloads.

    Attributes:
        name: the column name in the report.
        python: the interpreter of its virtual environment.
        driver: the driver script in ``bench/drivers``.
        group: ``ours``, ``original``, ``peer`` or ``ceiling``.
        workloads: report workload name -> driver options.
        broker: ``redis``, ``redis-cluster``, ``redis-cluster-sharded`` (``shards=3``),
            ``local`` or ``mongo`` (the driver's connector).
        version_of: the distribution whose version the report shows.
        source: the tree whose ``sergeant`` package the driver must import (put first on
            its ``PYTHONPATH`` and checked by the driver); None: whatever the venv has.
    """

    name: str
    python: Path
    driver: str
    group: str
    workloads: dict[str, dict[str, typing.Any]]
    broker: str = "redis"
    version_of: str = ""
    source: Path | None = None

    def size(self, workload: str, sizes: Sizes) -> int:
        """How many tasks this library's run of ``workload`` moves."""
        if workload == "idle_rss":
            return 0
        if workload == "latency":
            return min(sizes.latency_n, sizes.n)
        if workload == "memory_flat":
            return sizes.memory_n
        if workload.startswith("progress"):
            return PROGRESS_TASKS * PROGRESS_STEPS
        n = sizes.push_one_n if workload == "push_one" else sizes.n
        batched = "batched" in workload or workload.startswith("consume_procs")
        if batched and self.group in FAST_GROUPS and self.broker.startswith("redis"):
            n = sizes.batched_n
        if self.broker == "local":
            n = min(n, sizes.sqlite_n)
        elif self.broker == "mongo":
            n = min(n, sizes.mongo_n)
        if self.group == "peer":
            n = min(n, sizes.peer_push_n if workload.startswith("push") else sizes.peer_consume_n)
        return n


def _sergeant_workloads(full: bool) -> dict[str, dict[str, typing.Any]]:
    batched = {"workload": "consume", "tasks_per_transaction": BATCH}
    workloads: dict[str, dict[str, typing.Any]] = {
        "push_one": {"workload": "push_one"},
        "push_bulk": {"workload": "push_bulk"},
        "consume_one": {"workload": "consume", "tasks_per_transaction": 1},
        "consume_one_no_prefetch": {
            "workload": "consume",
            "tasks_per_transaction": 1,
            "prefetch": False,
        },
        "consume_batched": {**batched, "delivery": "at_least_once"},
        "consume_batched_amo": {**batched, "delivery": "at_most_once"},
        "consume_batched_no_prefetch": {
            **batched,
            "delivery": "at_least_once",
            "prefetch": False,
        },
        # Permits taken per batch, never refused: what the rate limit's path costs.
        "consume_batched_rate_limit": {
            **batched,
            "delivery": "at_least_once",
            "rate_limit": RATE_LIMIT_NOT_BINDING,
        },
    }
    if full:
        workloads["latency"] = {"workload": "latency"}
        workloads["idle_rss"] = {"workload": "idle_rss"}
        for procs in (1, 2, 4):
            workloads[f"consume_procs_{procs}"] = {
                **batched,
                "workload": "consume_procs",
                "procs": procs,
                "delivery": "at_least_once",
            }
    return workloads


def _cluster_workloads() -> dict[str, dict[str, typing.Any]]:
    """Bulk push and batched consume (one and several processes): where a cluster differs."""
    kept: tuple[str, ...] = ("push_bulk", "consume_batched", "consume_batched_amo")
    kept += tuple(f"consume_procs_{procs}" for procs in (1, 2, 4))
    return {name: args for name, args in _sergeant_workloads(True).items() if name in kept}


def _peer(name: str, batched_prefetch: int | None, one_prefetch: int = 1) -> Library:
    workloads: dict[str, dict[str, typing.Any]] = {
        "push_one": {"workload": "push_one"},
        "push_bulk": {"workload": "push_bulk"},
        "consume_one": {"workload": "consume", "prefetch": one_prefetch},
    }
    if batched_prefetch is not None:
        workloads["consume_batched"] = {"workload": "consume", "prefetch": batched_prefetch}
    return Library(
        name, PEERS_VENV / "bin" / "python", f"{name}_driver.py", "peer", workloads, version_of=name
    )


def all_libraries(our_python: Path) -> list[Library]:
    """Every library, in report order."""
    raw = {
        name: {"workload": name, "batch": BATCH}
        for name in ("push_one", "push_pipelined", "push_bulk")
    }
    raw["consume_one"] = {"workload": "consume_one"}
    raw["consume_batched"] = {"workload": "consume_batched", "batch": BATCH}
    original = _sergeant_workloads(full=True)
    for name in ("consume_batched_amo", "consume_batched_no_prefetch", "consume_one_no_prefetch"):
        del original[name]
    del original["consume_batched_rate_limit"]
    for procs in (1, 2, 4):
        del original[f"consume_procs_{procs}"]
    ours = _sergeant_workloads(full=True)
    # Memory over a million tasks: this project's target, measured on single-node Redis only.
    ours["memory_flat"] = {
        "workload": "memory_flat",
        "tasks_per_transaction": BATCH,
        "delivery": "at_least_once",
    }
    # Grouped tasks, round-robin over GROUPS groups, the bound far above what a group holds.
    ours["consume_batched_groups"] = {
        "workload": "consume",
        "tasks_per_transaction": BATCH,
        "delivery": "at_least_once",
        "groups": GROUPS,
        "group_concurrency": BATCH,
    }
    for name, report in (("progress_off", False), ("progress_on", True)):
        ours[name] = {"workload": "progress", "report": report, "steps": PROGRESS_STEPS}
    return [
        Library("sergeant", our_python, "sergeant_driver.py", "ours", ours),
        Library(
            "sergeant-cluster",
            our_python,
            "sergeant_driver.py",
            "ours",
            _cluster_workloads(),
            broker="redis-cluster",
        ),
        Library(
            "sergeant-cluster-sharded",
            our_python,
            "sergeant_driver.py",
            "ours",
            _cluster_workloads(),
            broker="redis-cluster-sharded",
        ),
        Library(
            "sergeant-0.27",
            SERGEANT027_VENV / "bin" / "python",
            "sergeant_driver.py",
            "original",
            original,
            version_of="sergeant",
        ),
        _peer("celery", batched_prefetch=BATCH),
        _peer("rq", batched_prefetch=None),
        _peer("dramatiq", batched_prefetch=BATCH, one_prefetch=2),
        _peer("huey", batched_prefetch=None),
        _peer("arq", batched_prefetch=BATCH),
        Library("redis-py", our_python, "raw_redis_driver.py", "ceiling", raw, version_of="redis"),
        Library(
            "sergeant-sqlite",
            our_python,
            "sergeant_driver.py",
            "ours",
            _sergeant_workloads(False),
            broker="local",
        ),
        Library(
            "sergeant-mongo",
            our_python,
            "sergeant_driver.py",
            "ours",
            _sergeant_workloads(False),
            broker="mongo",
        ),
    ]


#: Libraries that run in this project's own environment (no peers install needed).
OWN_ENV = (
    "sergeant",
    "sergeant-cluster",
    "sergeant-cluster-sharded",
    "redis-py",
    "sergeant-sqlite",
    "sergeant-mongo",
)
