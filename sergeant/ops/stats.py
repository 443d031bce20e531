"""What ``sergeant stats`` and the supervisor's metrics report about a queue.

One place computes it, so the table, ``--json`` and Prometheus agree. Counts come
from the broker; the live workers and the rate from the workers' heartbeats
(see ``sergeant.consume.presence``): ``done_last_minute`` is the sum, over the queue's
live workers, of the tasks each settled in the last 60 seconds.
"""

from __future__ import annotations

import typing

from sergeant.broker import Broker
from sergeant.consume import presence

__all__ = ["GROUPS_SHOWN", "GroupStats", "QueueStats", "group_stats", "queue_stats"]

#: Groups shown per queue: the largest (running + ready) first.
GROUPS_SHOWN = 10


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
    }


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
