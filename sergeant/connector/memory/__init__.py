"""The in-process broker: queues in this process's memory, for tests and one-process use.

``Connector(name='default')``: every connector of one process made with the same
``name`` shares one store, so a producer and a consumer worker in one test see the
same queues. Nothing is written anywhere and nothing outlives the process.

Per process only: a forked child or a supervisor's worker processes would see a
copy (or nothing) that nobody else shares, so a store used from another process
than the one that made it raises ``ConnectorError``, and the supervisor refuses a
memory broker. Use ``local`` (SQLite), ``redis`` or ``mongo`` for several processes.

Every operation holds the store's one lock; blocking leases and waits sleep on its
condition, woken by the push (or release) that makes an item ready.
"""

from __future__ import annotations

import heapq
import time
import typing
import uuid
from collections.abc import Sequence

from sergeant.connector import _unique, base
from sergeant.connector.base import Delivery, Priority, ReclaimResult
from sergeant.connector.memory import groups, steps
from sergeant.connector.memory.dead import DeadLetters
from sergeant.connector.memory.flows import Flows
from sergeant.connector.memory.groups import NO_LIMITS, Groups
from sergeant.connector.memory.keys import KeysAndWorkers
from sergeant.connector.memory.lock import Lock
from sergeant.connector.memory.store import Item, Lease, Store, forget
from sergeant.connector.memory.waiting import WaitingItems

__all__ = ["Connector", "Lock", "forget"]

T = typing.TypeVar("T")


class Connector(DeadLetters, KeysAndWorkers, Flows, WaitingItems, Groups, base.Connector):
    """A broker in this process's memory, shared by every connector of the same ``name``.

    Args:
        name: which in-process store to use; connectors with the same name share it.
    """

    name: typing.ClassVar[str] = "memory"
    supports_blocking: typing.ClassVar[bool] = True
    names_running_by: typing.Literal["slot", "token"] | None = "token"

    # -- ready and delayed items ------------------------------------------------------

    def push_many(
        self,
        queue: str,
        payloads: Sequence[bytes],
        priority: Priority = "NORMAL",
        consumable_from: float = 0.0,
    ) -> int:
        """See :meth:`sergeant.connector.Connector.push_many`."""
        if not payloads:
            return 0
        high = priority == "HIGH"

        def push(data: Store) -> int:
            target = data.queue(queue)
            items = [Item(uuid.uuid4().hex, bytes(p), high) for p in payloads]
            if consumable_from > time.time():
                for item in items:
                    heapq.heappush(target.delayed, (consumable_from, next(data.counter), item))
            else:
                target.lane(items[0]).extend(items)
            data.cond.notify_all()
            return len(items)

        return self._locked(push)

    def push_unique(
        self,
        queue: str,
        items: Sequence[bytes],
        unique_keys: Sequence[str | None],
        task_ids: Sequence[str],
        priority: Priority = "NORMAL",
        consumable_from: float = 0.0,
    ) -> list[str]:
        """See :meth:`sergeant.connector.Connector.push_unique`; checked and stored
        under the store's lock."""
        _unique.check(items, unique_keys, task_ids)
        high = priority == "HIGH"

        def push(data: Store) -> list[str]:
            target = data.queue(queue)
            holders, stored = [], []
            for payload, key, task_id in zip(items, unique_keys, task_ids, strict=True):
                held = target.unique.get(key) if key is not None else None
                if held is not None:
                    holders.append(held[0])
                    continue
                item = Item(uuid.uuid4().hex, bytes(payload), high, unique_key=key)
                if key is not None:
                    target.unique[key] = (task_id, item)
                holders.append(task_id)
                stored.append(item)
            due = consumable_from if consumable_from > time.time() else 0.0
            for item in stored:
                if due:
                    heapq.heappush(target.delayed, (due, next(data.counter), item))
                else:
                    target.lane(item).append(item)
            if stored:
                data.cond.notify_all()
            return holders

        return self._locked(push)

    def pop_many(self, queue: str, count: int) -> list[bytes]:
        """See :meth:`sergeant.connector.Connector.pop_many`."""
        if count <= 0:
            return []

        def pop(data: Store) -> list[bytes]:
            target = data.queue(queue)
            taken = groups.take(target, count, None) if target.groups else steps.take(target, count)
            target.free(taken)
            return [item.payload for item in taken]

        return self._locked(pop)

    def wait_for_items(self, queue: str, block_seconds: float) -> bool:
        """See :meth:`sergeant.connector.Connector.wait_for_items`; no polling."""
        return self._locked(lambda data: steps.wait_ready(data, queue, block_seconds))

    def length(self, queue: str, include_delayed: bool = False) -> int:
        """See :meth:`sergeant.connector.Connector.length`."""

        def count(data: Store) -> int:
            target = data.queue(queue)
            target.make_due_ready(time.time())
            waiting = len(target.delayed) if include_delayed else 0
            return len(target.high) + len(target.normal) + waiting

        return self._locked(count)

    def length_by_priority(self, queue: str) -> dict[Priority, int]:
        """See :meth:`sergeant.connector.Connector.length_by_priority`."""

        def count(data: Store) -> dict[Priority, int]:
            target = data.queue(queue)
            target.make_due_ready(time.time())
            return {"HIGH": len(target.high), "NORMAL": len(target.normal)}

        return self._locked(count)

    def purge(self, queue: str) -> int:
        """See :meth:`sergeant.connector.Connector.purge`."""

        def purge(data: Store) -> int:
            target = data.queue(queue)
            purged = len(target.high) + len(target.normal) + len(target.delayed)
            target.free([*target.high, *target.normal, *(d[2] for d in target.delayed)])
            target.high.clear()
            target.normal.clear()
            target.delayed.clear()
            return purged

        return self._locked(purge)

    # -- leases -----------------------------------------------------------------------

    def lease_many(
        self,
        queue: str,
        count: int,
        owner: str,
        lease_seconds: float,
        block_seconds: float = 0.0,
    ) -> list[Delivery]:
        """See :meth:`sergeant.connector.Connector.lease_many`."""
        if count <= 0:
            return []

        def lease(data: Store) -> list[Delivery]:
            if block_seconds > 0 and not steps.wait_ready(data, queue, block_seconds):
                return []
            target = data.queue(queue)
            deadline = time.time() + lease_seconds
            leased = []
            if target.groups:
                taken = groups.take(target, count, self._group_limits.get(queue, NO_LIMITS))
            else:
                taken = steps.take(target, count)
            for item in taken:
                item.deliveries += 1
                token = next(data.counter)
                target.leased[token] = Lease(item, token, owner, deadline)
                leased.append(Delivery(item.payload, item.item_id, token, item.deliveries))
            return leased

        return self._locked(lease)

    def ack_many(self, queue: str, deliveries: Sequence[Delivery]) -> int:
        """See :meth:`sergeant.connector.Connector.ack_many`."""

        def ack(data: Store) -> int:
            target = data.queue(queue)
            held = steps.settle(target, deliveries)
            target.free(lease.item for lease in held)
            return len(held)

        return self._locked(ack)

    def release_many(self, queue: str, deliveries: Sequence[Delivery]) -> int:
        """See :meth:`sergeant.connector.Connector.release_many`."""

        def release(data: Store) -> int:
            target = data.queue(queue)
            items = [lease.item for lease in steps.settle(target, deliveries)]
            steps.release(data, target, items)
            return len(items)

        return self._locked(release)

    def extend_leases(
        self, queue: str, deliveries: Sequence[Delivery], lease_seconds: float
    ) -> int:
        """See :meth:`sergeant.connector.Connector.extend_leases`."""

        def extend(data: Store) -> int:
            target = data.queue(queue)
            deadline = time.time() + lease_seconds
            held = [target.held(d.item_id, d.token) for d in deliveries]
            for lease in held:
                if lease is not None:
                    lease.deadline = deadline
            return sum(lease is not None for lease in held)

        return self._locked(extend)

    def reclaim_expired(self, queue: str, max_deliveries: int) -> ReclaimResult:
        """See :meth:`sergeant.connector.Connector.reclaim_expired`."""

        def reclaim(data: Store) -> ReclaimResult:
            target = data.queue(queue)
            now = time.time()
            expired = [lease for lease in target.leased.values() if lease.deadline <= now]
            for lease in expired:
                target.drop_lease(lease)
            return steps.charge(data, target, expired, max_deliveries, "worker died", "")

        return self._locked(reclaim)

    def charge_many(
        self,
        queue: str,
        deliveries: Sequence[Delivery],
        max_deliveries: int,
        reason: str,
        error: str = "",
    ) -> ReclaimResult:
        """See :meth:`sergeant.connector.Connector.charge_many`.

        The delivery was counted when it was leased: charging keeps that count.
        """

        def charge(data: Store) -> ReclaimResult:
            target = data.queue(queue)
            held = steps.settle(target, deliveries)
            return steps.charge(data, target, held, max_deliveries, reason, error)

        return self._locked(charge)

    def extend_owned(self, queue: str, owner: str, lease_seconds: float) -> int:
        """See :meth:`sergeant.connector.Connector.extend_owned`."""

        def extend(data: Store) -> int:
            deadline = time.time() + lease_seconds
            owned = steps.owned(data.queue(queue), owner)
            for lease in owned:
                lease.deadline = deadline
            return len(owned)

        return self._locked(extend)

    def release_owned(self, queue: str, owner: str) -> int:
        """See :meth:`sergeant.connector.Connector.release_owned`."""

        def release(data: Store) -> int:
            target = data.queue(queue)
            owned = steps.owned(target, owner)
            for lease in owned:
                target.drop_lease(lease)
            steps.release(data, target, [lease.item for lease in owned])
            return len(owned)

        return self._locked(release)

    def leased_count(self, queue: str) -> int:
        """See :meth:`sergeant.connector.Connector.leased_count`."""
        return self._locked(lambda data: len(data.queue(queue).leased))

    # -- lifecycle ----------------------------------------------------------------------

    def ping(self) -> None:
        """See :meth:`sergeant.connector.Connector.ping`; always answers in its process."""
        self._store.check_process()

    def close(self) -> None:
        """See :meth:`sergeant.connector.Connector.close`; the store stays (see ``forget``)."""
