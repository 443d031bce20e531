"""The largest shard count a queue was used with, and the items waiting in the shards
a lower count does not read.

Raising ``shards`` keeps every tag a queue has (see ``shards``); lowering it leaves the
last shards unread, their items kept but handed to no one. So a sharded connector
records its count for each queue it pushes to or leases from, as the largest ever, in
a one-member sorted set on the slot of the queue's shard 0 (``ZADD GT``: the record
only grows, in one command), once per queue per process. A worker on a cluster reads
the record at each reclaim (its heartbeat); while it is above the worker's own count,
it counts what the shards beyond hold (ready, delayed, leased, dead). The connector
logs one line when such items are found and one when they are gone, never per
heartbeat.
"""

from __future__ import annotations

from sergeant.connector.redis.keys import PREFIX
from sergeant.connector.redis.nodes import Node

__all__ = ["largest_count", "record_count", "shards_key", "unread_items"]

_MEMBER = "largest"


def shards_key(queue: str) -> str:
    """The record's key: on the slot of ``queue``'s shard 0 (its own tag)."""
    return f"{PREFIX}:{{{queue}}}:shards"


def record_count(node: Node, queue: str, shards: int) -> None:
    """Record ``shards`` for ``queue`` unless a larger count is recorded."""
    with node:
        node.client.zadd(shards_key(queue), {_MEMBER: shards}, gt=True)


def largest_count(node: Node, queue: str, shards: int) -> int:
    """The largest count recorded for ``queue``, or ``shards`` when none is."""
    with node:
        largest = node.client.zscore(shards_key(queue), _MEMBER)
    return int(largest or shards)


def unread_items(first: Node, queue: str, shards: int, largest: int) -> int:
    """What shards ``shards`` to ``largest - 1`` of ``queue`` hold: ready, delayed,
    leased and dead items; ``first`` is shard 0 of the cluster."""
    total = 0
    for index in range(shards, largest):
        view = first.view(index, largest)
        k = view.queue_keys(queue)
        with view:
            total += view.scripts.length(k, True)
            total += int(view.client.get(k.leased_count) or 0)
            total += int(view.client.llen(k.dead))
    return total
