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
from sergeant.consume import presence

__all__ = ["QueueStats", "queue_stats", "schedule_stats"]


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


def schedule_stats(broker: Broker, queues: typing.Sequence[str]) -> list[ScheduleRecord]:
    """The records of the schedules of ``queues`` (see ``sergeant.broker.schedules``):
    each schedule's last and next tick, as every scheduler of it wrote them."""
    return [record for queue in queues for record in broker.schedule_records(queue)]
