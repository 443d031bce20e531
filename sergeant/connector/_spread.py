"""One connector over several independent deployments of one engine (the 0.27 ``nodes``).

Each member is a whole connector on one deployment, and names itself in what it
hands back: ``Delivery.node`` and ``DeadLetter.node`` are its place in the list. As
with several independent Redis nodes (``sergeant.connector.redis.spread``), a push
is cut into contiguous parts, one per member, from a start that rotates from call to
call, so pushes land evenly; pops and leases visit every member from a rotating
start, so no member is left undrained. Acknowledging, releasing, extending, charging
and dead-lettering go to the member a delivery names; reclaim, the owner-level calls,
counts and purges visit every member. Keys, results and locks live on one member,
chosen by CRC32 of their name (as 0.27 sharded them), and the live-worker registry
on the first, so every producer and worker must list the members in the same order.

Every step stays one member's atomic step: order holds per member only (``ordered``
is False), and a member that cannot be reached fails the calls that reach it with
its own ``BrokerUnavailable``, naming it. With one member, every call goes straight
to it: a single deployment pays nothing for the spreading.
"""

from __future__ import annotations

import itertools
import random
import typing

from sergeant.connector import _unique, base
from sergeant.connector._polling import poll
from sergeant.connector._spread_by_name import ByName, member_index
from sergeant.connector._spread_waiting import SpreadWaiting
from sergeant.connector.base import (
    WAIT_POLL_FIRST_SECONDS,
    WAIT_POLL_MAX_SECONDS,
    DeadLetter,
    Delivery,
    Priority,
    ReclaimResult,
)

__all__ = ["MIN_SPREAD_CHUNK", "Spread", "member_index", "spread"]

#: Fewest items worth a round trip of their own: a smaller push goes to one member.
MIN_SPREAD_CHUNK = 100


def spread(count: int, member_count: int) -> list[tuple[int, int]]:
    """Cut ``count`` items into contiguous ``(begin, end)`` parts, one per member at most.

    Parts differ in size by one at most, and none is smaller than
    :data:`MIN_SPREAD_CHUNK` unless the whole push is.
    """
    parts = max(1, min(member_count, count // MIN_SPREAD_CHUNK))
    size, extra = divmod(count, parts)
    bounds = []
    begin = 0
    for index in range(parts):
        end = begin + size + (1 if index < extra else 0)
        bounds.append((begin, end))
        begin = end
    return bounds


class Spread(ByName, SpreadWaiting, base.Connector):
    """Queues spread over independent member connectors; see the module docstring.

    Args:
        members: one connector per deployment; member ``i`` must hand out deliveries
            and dead letters with ``node == i``.
    """

    def __init__(self, members: typing.Sequence[base.Connector]) -> None:
        self._members = list(members)
        self._one = self._members[0] if len(self._members) == 1 else None
        one = self._one
        self.ordered = one.ordered if one is not None else False
        self.overlaps_pulls = one.overlaps_pulls if one is not None else False
        self.names_running_by = one.names_running_by if one is not None else None
        # A random first start, so that many workers do not all begin at member 0.
        self._turn = itertools.count(random.randrange(1 << 16))

    def _rotated(self) -> list[base.Connector]:
        # next() on itertools.count is atomic under the GIL: no lock needed.
        start = next(self._turn) % len(self._members)
        return self._members[start:] + self._members[:start]

    def _sum(self, count: typing.Callable[[base.Connector], int]) -> int:
        return sum(count(member) for member in self._members)

    def _grouped(
        self, deliveries: typing.Sequence[Delivery]
    ) -> list[tuple[base.Connector, list[Delivery]]]:
        """``deliveries`` by the member they name; a node no longer listed holds none."""
        by_node: dict[int, list[Delivery]] = {}
        for delivery in deliveries:
            by_node.setdefault(delivery.node, []).append(delivery)
        count = len(self._members)
        return [
            (self._members[node], group) for node, group in by_node.items() if 0 <= node < count
        ]

    # -- ready and delayed items ------------------------------------------------

    def push_many(
        self,
        queue: str,
        payloads: typing.Sequence[bytes],
        priority: Priority = "NORMAL",
        consumable_from: float = 0.0,
    ) -> int:
        """Append payloads, atomically per member; several members get parts (:func:`spread`)."""
        if self._one is not None:
            return self._one.push_many(queue, payloads, priority, consumable_from)
        members = self._rotated()
        for member, (begin, end) in zip(members, spread(len(payloads), len(members)), strict=False):
            if end > begin:
                member.push_many(queue, payloads[begin:end], priority, consumable_from)
        return len(payloads)

    def push_unique(
        self,
        queue: str,
        items: typing.Sequence[bytes],
        unique_keys: typing.Sequence[str | None],
        task_ids: typing.Sequence[str],
        priority: Priority = "NORMAL",
        consumable_from: float = 0.0,
    ) -> list[str]:
        """Push keyed items each to the member its key hashes to, so one member holds
        each key; each member's part is one push there."""
        if self._one is not None:
            return self._one.push_unique(
                queue, items, unique_keys, task_ids, priority, consumable_from
            )
        _unique.check(items, unique_keys, task_ids)
        members = self._members
        holders = [""] * len(items)
        for index, positions in _unique.groups(queue, unique_keys, len(members)).items():
            part = members[index].push_unique(
                queue,
                [items[p] for p in positions],
                [unique_keys[p] for p in positions],
                [task_ids[p] for p in positions],
                priority,
                consumable_from,
            )
            for position, holder in zip(positions, part, strict=True):
                holders[position] = holder
        return holders

    def pop_many(self, queue: str, count: int) -> list[bytes]:
        """Remove and return up to ``count`` ready items, every member visited."""
        if self._one is not None:
            return self._one.pop_many(queue, count)
        popped: list[bytes] = []
        for member in self._rotated():
            if len(popped) >= count:
                break
            popped += member.pop_many(queue, count - len(popped))
        return popped

    def start_pop(self, queue: str, count: int) -> typing.Callable[[], list[bytes]]:
        """Begin :meth:`pop_many`; the member's own way with one member."""
        if self._one is not None:
            return self._one.start_pop(queue, count)
        return super().start_pop(queue, count)

    def wait_for_items(self, queue: str, block_seconds: float) -> bool:
        """Wait until some member has a ready item; the member's own way with one."""
        if self._one is not None:
            return self._one.wait_for_items(queue, block_seconds)
        return super().wait_for_items(queue, block_seconds)

    def length(self, queue: str, include_delayed: bool = False) -> int:
        """Ready (and, when asked, delayed) items, summed over the members."""
        return self._sum(lambda member: member.length(queue, include_delayed))

    def length_by_priority(self, queue: str) -> dict[Priority, int]:
        """Ready items per priority, summed over the members."""
        if self._one is not None:
            return self._one.length_by_priority(queue)
        totals: dict[Priority, int] = {"HIGH": 0, "NORMAL": 0}
        for member in self._members:
            for priority, ready in member.length_by_priority(queue).items():
                totals[priority] += ready
        return totals

    def purge(self, queue: str) -> int:
        """Delete every ready and delayed item of a queue on every member."""
        return self._sum(lambda member: member.purge(queue))

    # -- leases -----------------------------------------------------------------

    def _lease_round(
        self, queue: str, count: int, owner: str, lease_seconds: float
    ) -> list[Delivery] | None:
        """One non-blocking lease over every member from a rotating start; None if empty."""
        leased: list[Delivery] = []
        for member in self._rotated():
            leased += member.lease_many(queue, count - len(leased), owner, lease_seconds)
            if len(leased) >= count:
                break
        return leased or None

    def lease_many(
        self,
        queue: str,
        count: int,
        owner: str,
        lease_seconds: float,
        block_seconds: float = 0.0,
    ) -> list[Delivery]:
        """Lease up to ``count`` items, one batch per member visited.

        With several members an idle lease polls them all (every 2 ms at first,
        doubling up to 50 ms) until ``block_seconds`` is over, whatever each member
        could do alone: a push may land on any of them.
        """
        if self._one is not None:
            return self._one.lease_many(queue, count, owner, lease_seconds, block_seconds)
        if count <= 0:
            return []
        found = poll(
            lambda: self._lease_round(queue, count, owner, lease_seconds),
            block_seconds,
            WAIT_POLL_FIRST_SECONDS,
            WAIT_POLL_MAX_SECONDS,
        )
        return found or []

    def ack_and_lease(
        self,
        queue: str,
        acks: typing.Sequence[Delivery],
        count: int,
        owner: str,
        lease_seconds: float,
        block_seconds: float = 0.0,
    ) -> tuple[int, list[Delivery]]:
        """Acknowledge then lease; in one call of the member's with one member."""
        if self._one is not None:
            return self._one.ack_and_lease(queue, acks, count, owner, lease_seconds, block_seconds)
        return super().ack_and_lease(queue, acks, count, owner, lease_seconds, block_seconds)

    def start_ack_and_lease(
        self,
        queue: str,
        acks: typing.Sequence[Delivery],
        count: int,
        owner: str,
        lease_seconds: float,
    ) -> typing.Callable[[], tuple[int, list[Delivery]]]:
        """Begin :meth:`ack_and_lease`; the member's own way with one member."""
        if self._one is not None:
            return self._one.start_ack_and_lease(queue, acks, count, owner, lease_seconds)
        return super().start_ack_and_lease(queue, acks, count, owner, lease_seconds)

    def ack_many(self, queue: str, deliveries: typing.Sequence[Delivery]) -> int:
        """Forget held leased items, each on its member; stale ones skipped."""
        if self._one is not None:
            return self._one.ack_many(queue, deliveries)
        return sum(member.ack_many(queue, group) for member, group in self._grouped(deliveries))

    def release_many(self, queue: str, deliveries: typing.Sequence[Delivery]) -> int:
        """Put held leased items back at the head of their priority, each on its member."""
        if self._one is not None:
            return self._one.release_many(queue, deliveries)
        grouped = self._grouped(deliveries)
        return sum(member.release_many(queue, group) for member, group in grouped)

    def extend_leases(
        self, queue: str, deliveries: typing.Sequence[Delivery], lease_seconds: float
    ) -> int:
        """Move held leases' deadlines, each on its member."""
        if self._one is not None:
            return self._one.extend_leases(queue, deliveries, lease_seconds)
        grouped = self._grouped(deliveries)
        return sum(member.extend_leases(queue, group, lease_seconds) for member, group in grouped)

    def reclaim_expired(self, queue: str, max_deliveries: int) -> ReclaimResult:
        """Requeue or dead-letter expired leases on every member."""
        results = [member.reclaim_expired(queue, max_deliveries) for member in self._members]
        return _total(results)

    def charge_many(
        self,
        queue: str,
        deliveries: typing.Sequence[Delivery],
        max_deliveries: int,
        reason: str,
        error: str = "",
    ) -> ReclaimResult:
        """Charge held items whose run ended their worker, each on its member."""
        if self._one is not None:
            return self._one.charge_many(queue, deliveries, max_deliveries, reason, error)
        return _total(
            member.charge_many(queue, group, max_deliveries, reason, error)
            for member, group in self._grouped(deliveries)
        )

    def extend_owned(self, queue: str, owner: str, lease_seconds: float) -> int:
        """Extend every lease ``owner`` holds, on every member."""
        return self._sum(lambda member: member.extend_owned(queue, owner, lease_seconds))

    def release_owned(self, queue: str, owner: str) -> int:
        """Release every item ``owner`` holds, on every member."""
        return self._sum(lambda member: member.release_owned(queue, owner))

    def leased_count(self, queue: str) -> int:
        """Leased items, expired but unreclaimed ones included, summed over the members."""
        return self._sum(lambda member: member.leased_count(queue))

    # -- dead letters -----------------------------------------------------------

    def dead_letter_many(
        self, queue: str, deliveries: typing.Sequence[Delivery], reason: str, error: str = ""
    ) -> int:
        """Move held leased items to their member's dead letters."""
        if self._one is not None:
            return self._one.dead_letter_many(queue, deliveries, reason, error)
        grouped = self._grouped(deliveries)
        return sum(
            member.dead_letter_many(queue, group, reason, error) for member, group in grouped
        )

    def dead_letters(self, queue: str, limit: int = 100) -> list[DeadLetter]:
        """Up to ``limit`` dead items of all members, oldest first."""
        if self._one is not None:
            return self._one.dead_letters(queue, limit)
        found = [dead for member in self._members for dead in member.dead_letters(queue, limit)]
        found.sort(key=lambda dead: dead.dead_at)
        return found[: max(limit, 0)]

    def requeue_dead(self, queue: str, limit: int = 0) -> int:
        """Move up to ``limit`` (0 = all) dead items back to ready, each on its member."""
        if self._one is not None:
            return self._one.requeue_dead(queue, limit)
        total = 0
        for member in self._rotated():
            if limit and total >= limit:
                break
            total += member.requeue_dead(queue, limit - total if limit else 0)
        return total

    def purge_dead(self, queue: str) -> int:
        """Delete every dead item of a queue on every member."""
        return self._sum(lambda member: member.purge_dead(queue))

    def dead_count(self, queue: str) -> int:
        """Dead items of a queue, summed over the members."""
        return self._sum(lambda member: member.dead_count(queue))

    # -- lifecycle --------------------------------------------------------------

    def ping(self) -> None:
        """Check every member answers; raise the first one's ``BrokerUnavailable``."""
        for member in self._members:
            member.ping()

    def close(self) -> None:
        """Close every member."""
        for member in self._members:
            member.close()


def _total(results: typing.Iterable[ReclaimResult]) -> ReclaimResult:
    requeued = dead_lettered = 0
    for result in results:
        requeued += result.requeued
        dead_lettered += result.dead_lettered
    return ReclaimResult(requeued, dead_lettered)
