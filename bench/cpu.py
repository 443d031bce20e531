"""CPU per task and steady-state rates, from what the drivers report.

A driver reports, for its timed interval, ``cpu``: CPU seconds of the process(es) doing
the work (``worker_user``, ``worker_sys``) and, for work through the private single-node
Redis, of the server (``redis_user``, ``redis_sys`` from ``INFO cpu``, and the main
thread's ``redis_user_main_thread``/``redis_sys_main_thread`` where Redis has them).
On a Redis Cluster the ``redis_*`` fields are sums over its primaries, and
``redis_p<i>_user``/``redis_p<i>_sys`` each primary's own (:func:`primary_shares`).
Consume workloads may add ``steady_seconds`` (first task started to last task ended)
and ``spawn_seconds`` (worker started to last task ended; the timed interval if absent).
"""

from __future__ import annotations

import dataclasses
import statistics
import typing

#: The figures of one run, and of a cell (medians over its runs).
FIGURES = ("worker_us", "redis_us", "total_us", "steady_rate", "spawn_rate")


@dataclasses.dataclass(frozen=True)
class RunCpu:
    """One run's CPU microseconds per task and its rates (None: not measured)."""

    worker_us: float | None
    redis_us: float | None
    total_us: float | None
    steady_rate: float | None
    spawn_rate: float | None
    #: Each primary's fraction of the Redis CPU, on a cluster (empty elsewhere).
    redis_shares: tuple[float, ...] = ()


def primary_shares(cpu: dict[str, typing.Any]) -> tuple[float, ...]:
    """Each cluster primary's fraction of the Redis CPU (``redis_p<i>_*``); () if none."""
    spent = []
    for index in range(len(cpu)):
        mine = _seconds(cpu, f"redis_p{index}_user", f"redis_p{index}_sys")
        if mine is None:
            break
        spent.append(max(mine, 0.0))
    total = sum(spent)
    return tuple(one / total for one in spent) if total > 0 else ()


def _seconds(cpu: dict[str, typing.Any], *keys: str) -> float | None:
    if not all(key in cpu for key in keys):
        return None
    return sum(float(cpu[key]) for key in keys)


def _rate(n: int, seconds: typing.Any) -> float | None:
    return n / float(seconds) if seconds is not None and float(seconds) > 0 else None


def of_result(n: int, seconds: float, extra: dict[str, typing.Any]) -> RunCpu:
    """The per-task CPU and rates of one run of ``n`` tasks (``extra``: the driver's fields)."""
    cpu: dict[str, typing.Any] = extra.get("cpu") or {}
    worker = _seconds(cpu, "worker_user", "worker_sys")
    redis = _seconds(cpu, "redis_user", "redis_sys")
    per_task = 1e6 / n if n else 0.0
    worker_us = worker * per_task if worker is not None and n else None
    redis_us = redis * per_task if redis is not None and n else None
    total_us = worker_us + redis_us if worker_us is not None and redis_us is not None else None
    spawn = extra.get("spawn_seconds", seconds)
    return RunCpu(
        worker_us,
        redis_us,
        total_us,
        _rate(n, extra.get("steady_seconds")),
        _rate(n, spawn),
        primary_shares(cpu),
    )


@dataclasses.dataclass
class CpuCell:
    """Medians of each figure over a cell's good runs (each figure on its own)."""

    worker_us: float | None = None
    redis_us: float | None = None
    total_us: float | None = None
    steady_rate: float | None = None
    spawn_rate: float | None = None
    #: The cluster primaries' shares of the Redis CPU, largest first, medians over the runs.
    redis_shares: list[float] = dataclasses.field(default_factory=list)

    def measured(self) -> bool:
        return self.worker_us is not None


def summarize(figures: list[RunCpu]) -> CpuCell | None:
    """The cell of these runs; None when no run reported CPU."""
    cell = CpuCell()
    for name in FIGURES:
        values = [v for v in (getattr(f, name) for f in figures) if v is not None]
        setattr(cell, name, statistics.median(values) if values else None)
    # Largest first: which primary holds a queue's slot changes with the queue's name.
    shares = [sorted(f.redis_shares, reverse=True) for f in figures if f.redis_shares]
    if shares and all(len(one) == len(shares[0]) for one in shares):
        cell.redis_shares = [statistics.median(column) for column in zip(*shares, strict=True)]
    return cell if cell.measured() else None


def whole_run_redis(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """Redis CPU seconds between two ``INFO cpu`` readings (``used_cpu_*`` fields)."""
    return {key: after[key] - before[key] for key in before if key in after}
