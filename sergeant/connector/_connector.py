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

from sergeant.connector._lock import Lock
from sergeant.connector._polling import poll
from sergeant.connector._records import DeadLetter, Delivery, ReclaimResult

__all__ = [
    "Connector",
    "DeadLetter",
    "Delivery",
    "Lock",
    "Priority",
    "ReclaimResult",
]

Priority = typing.Literal["NORMAL", "HIGH"]

#: First and longest pause, in seconds, of the polling :meth:`Connector.wait_for_items`.
WAIT_POLL_FIRST_SECONDS = 0.002
WAIT_POLL_MAX_SECONDS = 0.05
#: Longest pause, in seconds, of the polling :meth:`Connector.wait_for_key`.
KEY_POLL_MAX_SECONDS = 0.2


class Connector(abc.ABC):
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
    #: :meth:`charge_many`: ``'slot'`` (every lease call makes one batch under one
    #: token on one node; the slot names the item: Redis on one server or a cluster),
    #: ``'token'`` (the token alone names the item: SQLite), or None (the whole
    #: delivery is needed). Set per instance where it depends on the set-up.
    names_running_by: typing.Literal["slot", "token"] | None = None

    # -- ready and delayed items ------------------------------------------------

    @abc.abstractmethod
    def push_many(
        self,
        queue: str,
        payloads: typing.Sequence[bytes],
        priority: Priority = "NORMAL",
        consumable_from: float = 0.0,
    ) -> int:
        """Append payloads to a queue, atomically per call on a single node.

        Args:
            queue: the queue name.
            payloads: items in the order they must be handed out.
            priority: ``'HIGH'`` items are handed out before ``'NORMAL'`` ones.
            consumable_from: Unix seconds before which the items must not be handed
                out; 0 (or any time in the past) means ready now.

        Returns:
            The number of items pushed (``len(payloads)``).

        Raises:
            BrokerFull: the broker is out of memory or disk; nothing of the refused
                part was stored. A full Redis or SQLite broker still hands out,
                settles and dead-letters what it holds, so workers drain it.
        """

    def push(
        self,
        queue: str,
        payload: bytes,
        priority: Priority = "NORMAL",
        consumable_from: float = 0.0,
    ) -> int:
        """Push one item; see :meth:`push_many`."""
        return self.push_many(queue, [payload], priority, consumable_from)

    @abc.abstractmethod
    def pop_many(self, queue: str, count: int) -> list[bytes]:
        """Remove and return up to ``count`` ready items (at-most-once; nothing is leased).

        HIGH before NORMAL, FIFO within a priority; due delayed items are made ready
        first, in the same atomic step. Never blocks. Returns ``[]`` when empty.
        """

    def start_pop(self, queue: str, count: int) -> typing.Callable[[], list[bytes]]:
        """Begin :meth:`pop_many` (not blocking); the function returned finishes it.

        For prefetching at-most-once, as :meth:`start_ack_and_lease`. By default the
        items are popped at once.
        """
        items = self.pop_many(queue, count)
        return lambda: items

    def wait_for_items(self, queue: str, block_seconds: float) -> bool:
        """Wait until ``queue`` has a ready item, at most ``block_seconds``.

        For idle at-most-once consumers, which pop without leasing. Nothing is
        taken: a True answer may be stale by the time the caller pops. This default
        polls :meth:`length`, every :data:`WAIT_POLL_FIRST_SECONDS` at first, doubling
        up to :data:`WAIT_POLL_MAX_SECONDS`; brokers that can wait server-side
        override it.

        Returns:
            True when an item is (or just was) ready; False when the time ran out.
        """
        ready = poll(
            lambda: True if self.length(queue) > 0 else None,
            block_seconds,
            WAIT_POLL_FIRST_SECONDS,
            WAIT_POLL_MAX_SECONDS,
        )
        return ready is not None

    def pop(self, queue: str) -> bytes | None:
        """Remove and return one ready item, or None; see :meth:`pop_many`."""
        items = self.pop_many(queue, 1)
        return items[0] if items else None

    @abc.abstractmethod
    def length(self, queue: str, include_delayed: bool = False) -> int:
        """Number of ready items, plus not-yet-due delayed items when asked.

        Leased and dead items are not counted (see :meth:`leased_count`,
        :meth:`dead_count`).
        """

    @abc.abstractmethod
    def length_by_priority(self, queue: str) -> dict[Priority, int]:
        """Ready items per priority (due delayed ones included), as :meth:`length` counts.

        Returns:
            ``{'HIGH': n, 'NORMAL': m}``, both keys always present; the two add up to
            ``length(queue)`` when nothing changes in between.
        """

    @abc.abstractmethod
    def purge(self, queue: str) -> int:
        """Delete every ready and delayed item of a queue; leased and dead items stay.

        Returns:
            The number of items deleted.
        """

    # -- leases -----------------------------------------------------------------

    @abc.abstractmethod
    def lease_many(
        self,
        queue: str,
        count: int,
        owner: str,
        lease_seconds: float,
        block_seconds: float = 0.0,
    ) -> list[Delivery]:
        """Hand out up to ``count`` ready items under a lease, in one atomic step.

        Same order as :meth:`pop_many`. Each handed-out item's delivery count is
        incremented, and its lease gets a fencing token no earlier lease of the item
        had. The lease deadline is taken from the broker's clock where it has one.

        Args:
            queue: the queue name.
            count: the most items to hand out.
            owner: an id of the worker process taking them; :meth:`extend_owned`
                and :meth:`release_owned` find its leases by it.
            lease_seconds: how long the lease lasts unless extended.
            block_seconds: when nothing is ready, how long to wait for an item
                before returning ``[]``; 0 returns at once.
        """

    def ack_and_lease(
        self,
        queue: str,
        acks: typing.Sequence[Delivery],
        count: int,
        owner: str,
        lease_seconds: float,
        block_seconds: float = 0.0,
    ) -> tuple[int, list[Delivery]]:
        """Acknowledge ``acks``, then lease as :meth:`lease_many`: one round trip where
        the broker can (Redis folds both into one script), else two calls.

        The acknowledgements take effect before the lease (and before any wait for
        items). Retrying after a lost reply is safe: acknowledging twice is harmless,
        and a lease whose reply was lost simply expires and is handed out again.

        Returns:
            ``(acknowledged, deliveries)``: how many of ``acks`` were still held, and
            the newly leased items.
        """
        acked = self.ack_many(queue, acks) if acks else 0
        return acked, self.lease_many(queue, count, owner, lease_seconds, block_seconds)

    def start_ack_and_lease(
        self,
        queue: str,
        acks: typing.Sequence[Delivery],
        count: int,
        owner: str,
        lease_seconds: float,
    ) -> typing.Callable[[], tuple[int, list[Delivery]]]:
        """Begin :meth:`ack_and_lease` (not blocking); the function returned finishes it.

        For prefetching: a worker sends the next leases before it runs its batch
        and reads the replies after, so the round trips overlap the tasks. Several
        may be in flight; the worker finishes them in the order it began them. Call
        each function once; it raises what :meth:`ack_and_lease` would. By default
        the work is done at once (Redis on one server sends the request and returns).
        """
        result = self.ack_and_lease(queue, acks, count, owner, lease_seconds)
        return lambda: result

    @abc.abstractmethod
    def ack_many(self, queue: str, deliveries: typing.Sequence[Delivery]) -> int:
        """Forget leased items for good (their outcome is settled).

        Returns:
            How many were acknowledged; a stale lease is skipped and not counted.
        """

    @abc.abstractmethod
    def release_many(self, queue: str, deliveries: typing.Sequence[Delivery]) -> int:
        """Give leased items back unstarted: ready again at the head of their priority.

        The delivery count is decremented, since the items never ran.

        Returns:
            How many were released; a stale lease is skipped and not counted.
        """

    @abc.abstractmethod
    def extend_leases(
        self,
        queue: str,
        deliveries: typing.Sequence[Delivery],
        lease_seconds: float,
    ) -> int:
        """Push the deadline of these leases to ``lease_seconds`` from now, in one step.

        A connector may keep one deadline per batch (the items of one leasing call;
        Redis does): extending any item of a batch then extends every item of it
        still held, which is what a worker renewing all its leases wants anyway.

        Returns:
            How many leases are still held (stale ones are skipped).
        """

    @abc.abstractmethod
    def reclaim_expired(self, queue: str, max_deliveries: int) -> ReclaimResult:
        """Take back every item whose lease has expired.

        An item delivered ``max_deliveries`` times or more goes to the dead letters
        with reason ``'worker died'``; the others go back to the head of their
        priority. Safe to call from many workers at once: each expired item is
        reclaimed exactly once. ``max_deliveries=0`` means no bound.
        """

    @abc.abstractmethod
    def charge_many(
        self,
        queue: str,
        deliveries: typing.Sequence[Delivery],
        max_deliveries: int,
        reason: str,
        error: str = "",
    ) -> ReclaimResult:
        """Give back leased items whose run ended their worker, charging that delivery.

        For a task that started and then took its worker down (it raised
        ``SystemExit``, the process was killed, it called ``os._exit``): each held item
        counts this delivery for good. Once it has been delivered ``max_deliveries``
        times (0 = no bound) it goes to the dead letters with ``reason`` and
        ``error``; otherwise back to the head of its priority, in the order given.

        Returns:
            How many were requeued and how many dead-lettered; stale leases are
            skipped and not counted.
        """

    @abc.abstractmethod
    def extend_owned(self, queue: str, owner: str, lease_seconds: float) -> int:
        """Extend every lease of ``queue`` held by ``owner`` to ``lease_seconds`` from now.

        The supervisor renews its live children's leases this way, also while a
        child cannot run Python (a task holding the GIL), and including the leases of
        pulls whose reply the child has not read yet.

        Returns:
            How many leased items ``owner`` holds.
        """

    @abc.abstractmethod
    def release_owned(self, queue: str, owner: str) -> int:
        """Give back every item of ``queue`` leased by ``owner``, as :meth:`release_many`.

        For a worker that is known to be dead: its unstarted (and prefetched) items go
        back to the head of their priority, in the order they were leased, uncharged.
        Charge the one it was running with :meth:`charge_many` first.

        Returns:
            How many items were released.
        """

    @abc.abstractmethod
    def leased_count(self, queue: str) -> int:
        """Number of items currently leased (expired leases not yet reclaimed included)."""

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
