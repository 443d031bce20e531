"""What the broker does for the fleet of workers rather than for one task: their
presence records, the leases one owner holds, queue counts, and what the engine can do.

A mixin of ``sergeant.broker.Broker``: the consumer, the supervisor, the stats and
the CLI go through it, never through the connector.
"""

from __future__ import annotations

import contextlib
import typing

from sergeant.connector import Connector

__all__ = ["Fleet", "QueueCounts"]


class QueueCounts(typing.NamedTuple):
    """How many tasks of one queue are in each state, read now."""

    ready_high: int
    ready_normal: int
    #: Not yet due.
    delayed: int
    #: Running or about to.
    leased: int
    dead: int


class Fleet:
    """Worker presence, owner-wide lease keeping and queue counts over ``connector``."""

    connector: Connector

    @property
    def overlaps_pulls(self) -> bool:
        """True when a pull sent ahead runs while the worker works (see the connector)."""
        return self.connector.overlaps_pulls

    def pulls_together(self) -> contextlib.AbstractContextManager[None]:
        """A block whose pulls sent ahead go out together at its end (one write on
        Redis with one server; see ``Connector.sending_together``)."""
        return self.connector.sending_together()

    @property
    def names_running_by(self) -> typing.Literal["slot", "token"] | None:
        """How a worker names its running task's lease cheaply (see the connector)."""
        return self.connector.names_running_by

    def ping(self) -> None:
        """Reach the broker once; raises ``ConnectionLost`` when it does not answer."""
        self.connector.ping()

    def register_worker(self, worker_id: str, info: bytes, ttl_seconds: float) -> None:
        """Publish (or refresh) a worker's presence record for ``ttl_seconds``."""
        self.connector.register_worker(worker_id, info, ttl_seconds)

    def unregister_worker(self, worker_id: str) -> bool:
        """Remove a worker's presence record; returns whether it was there."""
        return self.connector.unregister_worker(worker_id)

    def live_workers(self) -> list[bytes]:
        """The presence records of every live worker, of every queue."""
        return self.connector.workers()

    def extend_owned(self, queue: str, owner: str, lease_seconds: float) -> int:
        """Renew every lease ``owner`` holds on ``queue``; returns how many."""
        return self.connector.extend_owned(queue, owner, lease_seconds)

    def release_owned(self, queue: str, owner: str) -> int:
        """Give back, uncharged, every lease a dead ``owner`` held; returns how many."""
        return self.connector.release_owned(queue, owner)

    def counts(self, queue: str) -> QueueCounts:
        """The queue's ready (by priority), delayed, leased and dead counts."""
        by_priority = self.connector.length_by_priority(queue)
        waiting = self.connector.length(queue, include_delayed=True)
        ready = by_priority["HIGH"] + by_priority["NORMAL"]
        return QueueCounts(
            by_priority["HIGH"],
            by_priority["NORMAL"],
            max(0, waiting - ready),
            self.connector.leased_count(queue),
            self.connector.dead_count(queue),
        )
