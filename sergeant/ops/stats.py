"""What ``sergeant stats`` and the supervisor's metrics report about a queue.

One place computes it, so the table, ``--json`` and Prometheus agree. Counts come
from the broker; the live workers and the rate from the workers' heartbeats
(see ``sergeant.consume.presence``): ``done_last_minute`` is the sum, over the queue's
live workers, of the tasks each settled in the last 60 seconds.
"""

from __future__ import annotations

import typing

from sergeant.broker import Broker
from sergeant.broker.schedules import ScheduleRecord
from sergeant.config import RateLimit
from sergeant.consume import presence
from sergeant.errors import SergeantError

__all__ = [
    "GROUPS_SHOWN",
    "GroupStats",
    "QueueStats",
    "RateLimitStats",
    "group_stats",
    "queue_stats",
    "rate_limit_stats",
    "schedule_stats",
]

#: Groups shown per queue: the largest (running + ready) first.
GROUPS_SHOWN = 10


class RateLimitStats(typing.TypedDict):
    """A queue's ``rate_limit`` and whether it binds now (see ``rate_limit_stats``)."""

    tasks: int
    per_seconds: float
    #: Seconds until the broker allows the next start (0: now).
    next_start_in: float
    #: Live workers of the queue waiting for a start permit.
    throttled_workers: int


class QueueStats(typing.TypedDict):
    """Counts, rate and live workers of one queue; JSON-ready, in ``--json``'s key order."""

    queue: str
    #: ``ready_high`` + ``ready_normal``.
    ready: int
    ready_high: int
    ready_normal: int
    #: Not yet due.
    delayed: int
    #: Running or about to.
    leased: int
    dead: int
    #: Tasks the live workers settled in the last 60 seconds.
    done_last_minute: int
    #: The live workers' heartbeats (see ``sergeant.consume.presence``).
    workers: list[dict[str, typing.Any]]
    #: The rate limit's state, when a live worker has one (else None).
    rate_limit: RateLimitStats | None


def queue_stats(broker: Broker, queue: str) -> QueueStats:
    """Counts, rate and live workers of one queue (see :class:`QueueStats`)."""
    counts = broker.counts(queue)
    workers = presence.decode(broker.live_workers(), queue)
    return {
        "queue": queue,
        "ready": counts.ready_high + counts.ready_normal,
        "ready_high": counts.ready_high,
        "ready_normal": counts.ready_normal,
        "delayed": counts.delayed,
        "leased": counts.leased,
        "dead": counts.dead,
        "done_last_minute": sum(int(w.get("done_last_minute") or 0) for w in workers),
        "workers": workers,
        "rate_limit": rate_limit_stats(broker, queue, workers),
    }


def _reported_limit(workers: list[dict[str, typing.Any]]) -> RateLimit | None:
    """The rate limit a live worker's heartbeat reports, if any (the first one's)."""
    for worker in workers:
        found = worker.get("rate_limit")
        if isinstance(found, dict):
            try:
                return RateLimit(int(found["tasks"]), float(found["per_seconds"]))
            except (KeyError, TypeError, ValueError, SergeantError):
                continue
    return None


def rate_limit_stats(
    broker: Broker,
    queue: str,
    workers: list[dict[str, typing.Any]],
    limit: RateLimit | None = None,
) -> RateLimitStats | None:
    """The queue's rate limit (``limit``, or the one its live workers report) with the
    seconds until the next allowed start (one read, nothing granted) and how many live
    workers wait for a permit; None without a limit."""
    limit = limit or _reported_limit(workers)
    if limit is None:
        return None
    return {
        "tasks": limit.tasks,
        "per_seconds": limit.per_seconds,
        "next_start_in": round(broker.next_start_in(queue, limit), 3),
        "throttled_workers": sum(1 for worker in workers if worker.get("throttled") is True),
    }


def schedule_stats(broker: Broker, queues: typing.Sequence[str]) -> list[ScheduleRecord]:
    """The records of the schedules of ``queues`` (see ``sergeant.broker.schedules``):
    each schedule's last and next tick, as every scheduler of it wrote them."""
    return [record for queue in queues for record in broker.schedule_records(queue)]


class GroupStats(typing.TypedDict):
    """One group of a queue (``push_task(group_key=...)``); JSON-ready."""

    group: str
    #: Leased now (running or about to).
    running: int
    #: Ready (not delayed).
    ready: int


def group_stats(broker: Broker, queue: str, limit: int = GROUPS_SHOWN) -> list[GroupStats]:
    """The ``limit`` largest groups of ``queue`` (running + ready), largest first; empty
    for a queue without groups or a broker that does not keep them."""
    return [
        {"group": count.group, "running": count.leased, "ready": count.ready}
        for count in broker.group_counts(queue, limit)
    ]
