"""The connector contract: bytes in, bytes out, batch first.

A connector stores opaque payloads (``bytes``) in named queues on one broker
engine. It knows nothing of tasks, encoders or hooks: ``sergeant.broker`` builds
those on top. Every implementation passes ``tests/contract``; the docstrings here
are the specification that suite checks.

Vocabulary:

* **ready** items can be handed out now. ``HIGH`` items are handed out before
  ``NORMAL`` ones; within a priority, in push order (FIFO). A connector whose
  ``ordered`` flag is False (a queue spread over independent nodes) keeps that order
  per node only.
* **delayed** items were pushed with ``consumable_from`` in the future (Unix
  seconds). They become ready once due; the move is atomic with the pop or lease
  that observes them, so a due item is never handed out twice nor lost.
* **leased** items were handed out by :meth:`Connector.lease_many` and are owned by
  a worker until acknowledged, released, dead-lettered, or their lease expires
  and :meth:`Connector.reclaim_expired` puts them back.
* **dead** items were given up on, with a reason and the last error.

Each lease carries a fencing token: a value never used before by any lease of
that item (a per-queue lease counter on Redis, the item's fresh ready ``seq`` on
SQLite, a random claim id on MongoDB), so it never repeats even when the delivery
count goes down (:meth:`Connector.release_many`) or starts again
(:meth:`Connector.requeue_dead`). Tokens are compared for equality only.
Acknowledging, releasing, extending or dead-lettering with a stale token (the
lease expired and the item was reclaimed, released or handed to someone else)
does nothing and is not counted in the return value.
"""

from __future__ import annotations

import abc
import types
import typing

from sergeant.connector._flow_contract import FlowContract
from sergeant.connector._group_contract import GroupContract
from sergeant.connector._lease_contract import LeaseContract
from sergeant.connector._lock import Lock
from sergeant.connector._once_contract import ONCE_SETTLE_SECONDS, OnceContract
from sergeant.connector._permits_contract import PermitsContract
from sergeant.connector._polling import (
    KEY_POLL_MAX_SECONDS,
    WAIT_POLL_FIRST_SECONDS,
    WAIT_POLL_MAX_SECONDS,
    poll,
)
from sergeant.connector._queue_contract import Priority, QueueContract
from sergeant.connector._records import (
    DeadLetter,
    Delivery,
    GroupCount,
    GroupLimits,
    ReclaimResult,
    Waiting,
)
from sergeant.connector._waiting_contract import WaitingContract

__all__ = [
    "KEY_POLL_MAX_SECONDS",
    "ONCE_SETTLE_SECONDS",
    "WAIT_POLL_FIRST_SECONDS",
    "WAIT_POLL_MAX_SECONDS",
    "Connector",
    "DeadLetter",
    "Delivery",
    "GroupCount",
    "GroupLimits",
    "Lock",
    "Priority",
    "ReclaimResult",
    "Waiting",
]


class Connector(
    QueueContract,
    LeaseContract,
    FlowContract,
    WaitingContract,
    GroupContract,
    OnceContract,
    PermitsContract,
):
    """A broker engine holding named queues of opaque payloads.

    Implementations open their connections lazily, so an instance created before a
    fork is safe to use in the child. All durations are seconds; all absolute times
    are Unix seconds. Driver errors are raised as ``sergeant.errors.ConnectorError``
    subclasses.
    """

    #: The ``Connector.type`` value in ``sergeant.config`` that selects this class.
    name: typing.ClassVar[str]
    #: True when :meth:`lease_many` can wait server-side for a push (no polling).
    supports_blocking: typing.ClassVar[bool] = False
    #: True when items come out in the documented order across the whole broker: HIGH
    #: before NORMAL, FIFO within a priority. False when a queue is spread over
    #: independent nodes (Redis with several ``nodes``/``urls``): the order then holds
    #: per node only, and every item is still handed out exactly as the contract says.
    #: Set per instance where it depends on the set-up.
    ordered: bool = True
    #: True when :meth:`start_ack_and_lease` really sends the request and returns
    #: (Redis on one server), so a pull can overlap the running batch; a worker's
    #: default ``prefetch`` is on for batches only then. Set per instance.
    overlaps_pulls: bool = False
    #: How a worker names the lease of the task it runs, cheaply, for
    #: :meth:`charge_many`: ``'slot'`` (every :meth:`ack_and_lease` hands out one batch
    #: under one token on one node; the slot names the item: Redis),
    #: ``'token'`` (the token alone names the item: SQLite), or None (the whole
    #: delivery is needed). Set per instance where it depends on the set-up.
    names_running_by: typing.Literal["slot", "token"] | None = None

    # -- dead letters -----------------------------------------------------------

    @abc.abstractmethod
    def dead_letter_many(
        self,
        queue: str,
        deliveries: typing.Sequence[Delivery],
        reason: str,
        error: str = "",
    ) -> int:
        """Move leased items to the dead letters with a reason and the last error.

        Returns:
            How many were moved; a stale lease is skipped and not counted.
        """

    @abc.abstractmethod
    def dead_letters(self, queue: str, limit: int = 100) -> list[DeadLetter]:
        """Up to ``limit`` dead items, oldest first, without removing them."""

    @abc.abstractmethod
    def requeue_dead(self, queue: str, limit: int = 0) -> int:
        """Move up to ``limit`` dead items (0 = all), oldest first, back to ready.

        Their delivery count starts again from 0; they go to the tail of NORMAL.

        Returns:
            How many were requeued.
        """

    @abc.abstractmethod
    def purge_dead(self, queue: str) -> int:
        """Delete every dead item of a queue; returns how many."""

    @abc.abstractmethod
    def dead_count(self, queue: str) -> int:
        """Number of dead items of a queue."""

    # -- keys and locks -----------------------------------------------------------

    @abc.abstractmethod
    def key_set(self, key: str, value: bytes, ttl_seconds: float | None = None) -> None:
        """Store ``value`` under ``key`` (overwriting), expiring after ``ttl_seconds``."""

    @abc.abstractmethod
    def key_get(self, key: str) -> bytes | None:
        """The value under ``key``, or None if missing or expired."""

    @abc.abstractmethod
    def key_delete(self, key: str) -> bool:
        """Delete ``key``; True if it existed."""

    def key_set_notify(self, key: str, value: bytes, ttl_seconds: float) -> None:
        """:meth:`key_set`, and wake the callers of :meth:`wait_for_key` on ``key``.

        This default only stores; brokers that can wait server-side override both.
        """
        self.key_set(key, value, ttl_seconds)

    def wait_for_key(self, key: str, timeout_seconds: float | None) -> bytes | None:
        """The value under ``key``, waiting up to ``timeout_seconds`` (None: forever) for
        :meth:`key_set_notify` to store it.

        This default polls :meth:`key_get`, every :data:`WAIT_POLL_FIRST_SECONDS` at
        first, doubling up to :data:`KEY_POLL_MAX_SECONDS`.

        Returns:
            The value, or None if it was not there when the time ran out.
        """
        return poll(
            lambda: self.key_get(key),
            timeout_seconds,
            WAIT_POLL_FIRST_SECONDS,
            KEY_POLL_MAX_SECONDS,
        )

    @abc.abstractmethod
    def lock(self, name: str) -> Lock:
        """A lock object for ``name`` (not yet acquired)."""

    # -- live workers -----------------------------------------------------------

    @abc.abstractmethod
    def register_worker(self, worker_id: str, info: bytes, ttl_seconds: float) -> None:
        """Publish (or refresh) a worker's heartbeat, alive for ``ttl_seconds`` from now.

        Idempotent: registering again replaces ``info`` and moves the expiry. Workers
        are broker-wide, not per queue. Expiry is checked on every read (no reliance
        on a server-side TTL sweep), so a worker that dies vanishes on its own.
        """

    @abc.abstractmethod
    def unregister_worker(self, worker_id: str) -> bool:
        """Remove a worker's heartbeat at once; True if it was registered and alive."""

    @abc.abstractmethod
    def workers(self) -> list[bytes]:
        """The ``info`` of every worker whose heartbeat has not expired, in no set order."""

    # -- lifecycle --------------------------------------------------------------

    @abc.abstractmethod
    def ping(self) -> None:
        """Check the broker answers; raise ``BrokerUnavailable`` naming its address if not."""

    @abc.abstractmethod
    def close(self) -> None:
        """Close connections; the object may not be used afterwards."""

    def __enter__(self) -> Connector:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        self.close()
