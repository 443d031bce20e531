"""Sharded queues on a Redis Cluster: the hash tag of each shard of a queue.

Without sharding all keys of queue ``q`` share the hash tag ``{q}``, so the queue
lives in one cluster slot, on one primary. With ``shards=N`` the connector holds N
views of the one cluster (see ``spread.connect``), and view ``s`` names the keys of
``q`` with the tag :func:`shard_tags` gives it: shard 0 keeps ``{q}`` (so the items
of a queue pushed before sharding was turned on stay consumable), shard ``s > 0``
uses ``{q#k}`` with the smallest ``k`` whose slot falls in the range of the slot
space given to that shard.

The ranges: the 16384 slots cut evenly into N ranges; shard 0 takes the range its
slot is in, the others take the remaining ranges in order. The choice depends on
the queue name and N only (never on the live slot map), so every process agrees
on it across restarts. With the slot map ``redis-cli --cluster create`` makes
(contiguous equal ranges, one per primary) and N equal to the number of primaries,
each shard is on its own primary; after a reshard, or with uneven ranges, two
shards may share a primary: nothing breaks, only the balance.

A queue named ``q#<k>`` would share its keys with a shard of a sharded queue
``q``: do not give queues such names next to a sharded one. Redis hashes a key's
tag only up to its first ``}``, so for a name holding one the shards' tags are
``{k#q}`` instead.
"""

from __future__ import annotations

import functools

import redis.crc

from sergeant.connector.redis.keys import PREFIX
from sergeant.errors import ConfigError

__all__ = ["MAX_SHARDS", "SLOTS", "shard_range", "shard_tags", "slot_of"]

#: The most shards a queue may have (each keeps its own keys and fencing tokens).
MAX_SHARDS = 1024
#: Hash slots of a Redis Cluster.
SLOTS = redis.crc.REDIS_CLUSTER_HASH_SLOTS
#: Candidate tags tried per queue before giving up.
_MAX_TRIES = 1_000_000


def slot_of(tag: str) -> int:
    """The cluster slot of the keys named with hash tag ``{tag}``."""
    # The whole key, so Redis's own rule (first '{' to the next '}') decides the tag.
    return int(redis.crc.key_slot(f"{PREFIX}:{{{tag}}}:ready:high".encode()))


def shard_range(slot: int, shards: int) -> int:
    """Which of ``shards`` even ranges of the slot space ``slot`` falls in."""
    return slot * shards // SLOTS


@functools.lru_cache(maxsize=4096)
def shard_tags(queue: str, shards: int) -> tuple[str, ...]:
    """The hash tags (inside the braces) of the ``shards`` shards of ``queue``.

    Shard 0 is ``queue`` itself; the others are ``queue#k`` as the module docstring
    says, each in a slot range of its own.
    """
    if shards <= 1:
        return (queue,)
    first = shard_range(slot_of(queue), shards)
    wanted = [r for r in range(shards) if r != first]
    found: dict[int, str] = {}
    # Redis hashes only up to the first '}': a name holding one varies a prefix instead.
    form = "{k}#{queue}" if "}" in queue else "{queue}#{k}"
    for k in range(_MAX_TRIES):
        tag = form.format(queue=queue, k=k)
        where = shard_range(slot_of(tag), shards)
        if where != first and where not in found:
            found[where] = tag
            if len(found) == len(wanted):
                break
    else:  # never met (about 7,400 tries cover 1024 ranges), but never a hang either
        raise ConfigError(f"no hash tags found for {shards} shards of queue {queue!r}")
    return (queue, *(found[r] for r in wanted))
