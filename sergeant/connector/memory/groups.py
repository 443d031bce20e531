"""The memory connector's groups (see ``_group_contract``): grouped items live in the
queue's usual priority lanes, tagged with their group; a lease of a queue that has
ever had a grouped item takes them through :func:`take`, one per group per round of
the queue's ring, within the limits of the connector that leases."""

from __future__ import annotations

import collections
import dataclasses
import heapq
import time
import uuid
from collections.abc import Sequence

from sergeant.connector._records import GroupCount, GroupLimits
from sergeant.connector.base import Priority
from sergeant.connector.memory.access import StoreAccess
from sergeant.connector.memory.store import Item, QueueData, Store

__all__ = ["NO_LIMITS", "Groups", "check_keys", "take"]

NO_LIMITS = GroupLimits()


@dataclasses.dataclass(slots=True)
class GroupState:
    """One group of a queue: how many of its items are leased, and when it was leased."""

    leased: int = 0
    starts: collections.deque[float] = dataclasses.field(default_factory=collections.deque)


def check_keys(items: Sequence[bytes], group_keys: Sequence[str]) -> None:
    """Refuse group keys that do not name one non-empty group per item."""
    if len(items) != len(group_keys):
        raise ValueError(
            f"push_grouped got {len(items)} items and {len(group_keys)} group keys; "
            "give one group key per item"
        )
    if not all(isinstance(key, str) and key for key in group_keys):
        raise ValueError("every group key must be a non-empty string")


def _eligible(state: GroupState, limits: GroupLimits, now: float) -> bool:
    if limits.concurrency and state.leased >= limits.concurrency:
        return False
    if limits.rate_tasks:
        starts = state.starts
        while starts and starts[0] <= now - limits.rate_seconds:
            starts.popleft()
        if len(starts) >= limits.rate_tasks:
            return False
    return True


def _heads(target: QueueData, count: int) -> dict[str | None, collections.deque[Item]]:
    """Per group (None: the ungrouped items), its first ``count`` ready items in order."""
    heads: dict[str | None, collections.deque[Item]] = {}
    for lane in (target.high, target.normal):
        for item in lane:
            found = heads.setdefault(item.group, collections.deque())
            if len(found) < count:
                found.append(item)
    return heads


def take(target: QueueData, count: int, limits: GroupLimits | None) -> list[Item]:
    """Up to ``count`` ready items, one per ring member per round (see the contract).

    ``limits`` None pops (at-most-once: no limits, no slots); otherwise the taken items
    are leased, counted in their group's slots and rate.
    """
    now = time.time()
    target.make_due_ready(now)
    heads = _heads(target, count)
    members: list[str | None] = [None, *target.ring]
    members += [group for group in heads if group is not None and group not in target.ring]
    start = target.ring_next % len(members)
    taken: list[Item] = []
    served = start - 1
    progress = True
    while progress and len(taken) < count:
        progress = False
        for offset in range(len(members)):
            index = (start + offset) % len(members)
            group = members[index]
            ready = heads.get(group)
            if not ready:
                continue
            if group is not None and limits is not None:
                state = target.groups[group]
                if not _eligible(state, limits, now):
                    continue
                state.leased += 1
                state.starts.append(now)
            taken.append(ready.popleft())
            served, progress = index, True
            if len(taken) >= count:
                break
        start = (served + 1) % len(members)
    chosen = {id(item) for item in taken}
    for lane in (target.high, target.normal):
        if any(id(item) in chosen for item in lane):
            kept = [item for item in lane if id(item) not in chosen]
            lane.clear()
            lane.extend(kept)
    # The ring keeps the groups that still have ready or leased items, in order.
    still = {item.group for lane in (target.high, target.normal) for item in lane}
    keep = [g for g in members[1:] if g is not None and (g in still or target.groups[g].leased > 0)]
    before = [g for g in members[1:start] if g in keep] if start else []
    target.ring = keep
    target.ring_next = 0 if start == 0 else len(before) + 1
    return taken


class Groups(StoreAccess):
    """``push_grouped``, ``set_group_limits`` and ``group_counts`` under the store's lock."""

    def __init__(self, name: str = "default") -> None:
        super().__init__(name)
        self._group_limits: dict[str, GroupLimits] = {}

    def push_grouped(
        self,
        queue: str,
        items: Sequence[bytes],
        group_keys: Sequence[str],
        priority: Priority = "NORMAL",
        consumable_from: float = 0.0,
    ) -> None:
        """See :meth:`sergeant.connector.Connector.push_grouped`."""
        check_keys(items, group_keys)
        if not items:
            return
        high = priority == "HIGH"

        def push(data: Store) -> None:
            target = data.queue(queue)
            stored = [
                Item(uuid.uuid4().hex, bytes(payload), high, group=key)
                for payload, key in zip(items, group_keys, strict=True)
            ]
            for key in group_keys:
                if key not in target.groups:
                    target.groups[key] = GroupState()
            if consumable_from > time.time():
                for item in stored:
                    heapq.heappush(target.delayed, (consumable_from, next(data.counter), item))
            else:
                target.lane(stored[0]).extend(stored)
            data.cond.notify_all()

        self._locked(push)

    def set_group_limits(self, queue: str, limits: GroupLimits) -> None:
        """See :meth:`sergeant.connector.Connector.set_group_limits`."""
        self._group_limits[queue] = limits

    def group_counts(self, queue: str, limit: int = 20) -> list[GroupCount]:
        """See :meth:`sergeant.connector.Connector.group_counts`."""

        def count(data: Store) -> list[GroupCount]:
            target = data.queue(queue)
            target.make_due_ready(time.time())
            ready: collections.Counter[str] = collections.Counter()
            for lane in (target.high, target.normal):
                ready.update(item.group for item in lane if item.group is not None)
            found = [
                GroupCount(group, ready[group], state.leased)
                for group, state in target.groups.items()
                if ready[group] or state.leased
            ]
            found.sort(key=lambda c: c.ready + c.leased, reverse=True)
            return found[: max(limit, 0)]

        return self._locked(count)
