"""The connector contract, part two: leases (lease, acknowledge, release, extend, reclaim).

``sergeant.connector.base.Connector`` combines this with the other parts; the
fencing rules are in its module docstring.
"""

from __future__ import annotations

import abc
import typing

from sergeant.connector._records import Delivery, ReclaimResult

__all__ = ["LeaseContract"]


class LeaseContract(abc.ABC):
    """Handing items out under a lease and settling them.

    :meth:`ack_and_lease` is composed of the primitives :meth:`ack_many` and
    :meth:`lease_many`; an engine that does both in one round trip overrides it, and
    never the other way round (no primitive is built on it).
    """

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
