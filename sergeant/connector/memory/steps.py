"""The steps of the in-process broker's operations, each run under its store's lock."""

from __future__ import annotations

import time
from collections.abc import Sequence

from sergeant.connector._records import DeadLetter, Delivery, ReclaimResult
from sergeant.connector.memory.store import Dead, Item, Lease, QueueData, Store

__all__ = [
    "charge",
    "dead_letter",
    "live_key",
    "owned",
    "release",
    "settle",
    "take",
    "wait_ready",
]


def take(target: QueueData, count: int) -> list[Item]:
    """Up to ``count`` ready items off the heads: HIGH first, then NORMAL."""
    target.make_due_ready(time.time())
    taken: list[Item] = []
    for lane in (target.high, target.normal):
        while lane and len(taken) < count:
            taken.append(lane.popleft())
    return taken


def wait_ready(data: Store, queue: str, block_seconds: float) -> bool:
    """Sleep on the condition until ``queue`` has a ready item or the time is up."""
    target = data.queue(queue)
    give_up = time.monotonic() + block_seconds
    while True:
        now = time.time()
        target.make_due_ready(now)
        if target.high or target.normal:
            return True
        remaining = give_up - time.monotonic()
        if remaining <= 0:
            return False
        due = target.next_due()
        data.cond.wait(remaining if due is None else min(remaining, max(due - now, 0.0)))


def settle(target: QueueData, deliveries: Sequence[Delivery]) -> list[Lease]:
    """Remove and return the leases of ``deliveries`` still held, in the order given."""
    held = []
    for delivery in deliveries:
        lease = target.held(delivery.item_id, delivery.token)
        if lease is not None:
            target.drop_lease(lease)
            held.append(lease)
    return held


def release(data: Store, target: QueueData, items: list[Item]) -> None:
    """Unstarted items back to the head, uncounted."""
    for item in items:
        item.deliveries -= 1
    target.to_head(items)
    if items:
        data.cond.notify_all()


def charge(
    data: Store,
    target: QueueData,
    leases: list[Lease],
    max_deliveries: int,
    reason: str,
    error: str,
) -> ReclaimResult:
    """Settled leases: dead once over budget, else back to the head, in lease order."""
    now = time.time()
    spent = [lease for lease in leases if 0 < max_deliveries <= lease.item.deliveries]
    requeue = [lease.item for lease in leases if not 0 < max_deliveries <= lease.item.deliveries]
    target.dead.extend(Dead(lease.item, reason, error, now) for lease in spent)
    target.free(lease.item for lease in spent)
    target.to_head(requeue)
    if requeue:
        data.cond.notify_all()
    return ReclaimResult(requeued=len(requeue), dead_lettered=len(spent))


def owned(target: QueueData, owner: str) -> list[Lease]:
    """The leases ``owner`` holds, in the order they were leased."""
    return sorted(
        (lease for lease in target.leased.values() if lease.owner == owner),
        key=lambda lease: lease.token,
    )


def dead_letter(entry: Dead) -> DeadLetter:
    item = entry.item
    return DeadLetter(
        item.item_id, item.payload, entry.reason, entry.error, item.deliveries, entry.dead_at
    )


def live_key(data: Store, key: str) -> bytes | None:
    entry = data.keys.get(key)
    if entry is None:
        return None
    value, expires_at = entry
    if expires_at is not None and expires_at <= time.time():
        del data.keys[key]
        return None
    return value
