"""What ``sergeant stats`` and the supervisor's metrics report about a queue.

One place computes it, so the table, ``--json`` and Prometheus agree. Counts come
from the connector; the live workers and the rate from the workers' heartbeats
(see ``sergeant._presence``): ``done_last_minute`` is the sum, over the queue's
live workers, of the tasks each settled in the last 60 seconds.
"""

from __future__ import annotations

import typing

from sergeant import _presence
from sergeant.connector import Connector

__all__ = ["QueueStats", "queue_stats"]


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
    #: The live workers' heartbeats (see ``sergeant._presence``).
    workers: list[dict[str, typing.Any]]


def queue_stats(connector: Connector, queue: str) -> QueueStats:
    """Counts, rate and live workers of one queue (see :class:`QueueStats`)."""
    by_priority = connector.length_by_priority(queue)
    ready = by_priority["HIGH"] + by_priority["NORMAL"]
    waiting = connector.length(queue, include_delayed=True)
    workers = _presence.decode(connector.workers(), queue)
    return {
        "queue": queue,
        "ready": ready,
        "ready_high": by_priority["HIGH"],
        "ready_normal": by_priority["NORMAL"],
        "delayed": max(0, waiting - ready),
        "leased": connector.leased_count(queue),
        "dead": connector.dead_count(queue),
        "done_last_minute": sum(int(w.get("done_last_minute") or 0) for w in workers),
        "workers": workers,
    }
