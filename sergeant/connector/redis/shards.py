"""Sharded queues on a Redis Cluster: the hash tag of each shard of a queue.

Without sharding all keys of queue ``q`` share the hash tag ``{q}``, so the queue
lives in one cluster slot, on one primary. With ``shards=N`` the connector holds N
views of the one cluster (see ``spread.connect``), and view ``s`` names the keys of
``q`` with the tag ``shard_tags(q, N)[s]``: shard 0 keeps ``{q}`` (so the items of
a queue pushed before sharding was turned on stay consumable), shard ``s > 0`` uses
``{q#k}`` for a ``k`` chosen as below.

The tags of N shards are the first N of one sequence per queue, so raising
``shards`` keeps every tag a queue already has: what was pushed before is read
after. Lowering it drops the last shards' tags (their items wait for a connector
with the larger count). The sequence spreads every prefix over the slot space:

- up to :data:`EXACT_SHARDS` shards, exactly: for every N up to it, the first N
  tags sit in the N equal ranges of the 16384 slots, one per range. A search over
  the cells those ranges cut the slot space into finds such a sequence (none goes
  on for every N: no 18 points can, Berlekamp and Graham's "18-point problem");
- beyond, each next tag takes the middle of the widest gap between the tags so far,
  so no range of N holds more than three of them.

The choice depends on the queue name only (never on the live slot map), so every
process agrees on it across restarts. With the slot map ``redis-cli --cluster
create`` makes (contiguous equal ranges, one per primary) and N equal to the number
of primaries, up to :data:`EXACT_SHARDS` each shard is on its own primary; after a
reshard, with uneven ranges, or beyond, two shards may share a primary: nothing
breaks, only the balance.

A queue named ``q#<k>`` would share its keys with a shard of a sharded queue
``q``: do not give queues such names next to a sharded one. Redis hashes a key's
tag only up to its first ``}``, so for a name holding one the shards' tags are
``{k#q}`` instead.
"""

from __future__ import annotations

import bisect
import functools
import heapq

import redis.crc

from sergeant.connector.redis.keys import PREFIX
from sergeant.errors import ConfigError

__all__ = ["EXACT_SHARDS", "MAX_SHARDS", "SLOTS", "shard_range", "shard_tags", "slot_of"]

#: The most shards a queue may have (each keeps its own keys and fencing tokens).
MAX_SHARDS = 1024
#: Up to this many shards every count is spread exactly (see the module docstring).
EXACT_SHARDS = 10
#: Hash slots of a Redis Cluster.
SLOTS = redis.crc.REDIS_CLUSTER_HASH_SLOTS
#: Steps the exact search may take before it settles for fewer exact shards: it
#: takes a few thousand for the names tried, but it must never hang on one.
_SEARCH_STEPS = 200_000
#: Candidate tags tried per queue before giving up.
_MAX_TRIES = 2_000_000


def slot_of(tag: str) -> int:
    """The cluster slot of the keys named with hash tag ``{tag}``."""
    # The whole key, so Redis's own rule (first '{' to the next '}') decides the tag.
    return int(redis.crc.key_slot(f"{PREFIX}:{{{tag}}}:ready:high".encode()))


def shard_range(slot: int, shards: int) -> int:
    """Which of ``shards`` even ranges of the slot space ``slot`` falls in."""
    return slot * shards // SLOTS


@functools.lru_cache(maxsize=4096)
def shard_tags(queue: str, shards: int) -> tuple[str, ...]:
    """The hash tags (inside the braces) of the ``shards`` shards of ``queue``: the
    first ``shards`` of the queue's sequence (see the module docstring); shard 0 is
    ``queue`` itself."""
    if shards <= 1:
        return (queue,)
    exact = _exact_tags(queue)
    if shards <= len(exact):
        return exact[:shards]
    return _widest_gap_tags(queue)[:shards]


def _candidate(queue: str, k: int) -> str:
    # Redis hashes only up to the first '}': a name holding one varies a prefix instead.
    return f"{k}#{queue}" if "}" in queue else f"{queue}#{k}"


@functools.lru_cache(maxsize=1024)
def _exact_tags(queue: str) -> tuple[str, ...]:
    """The longest exact prefix the search finds, up to :data:`EXACT_SHARDS` tags."""
    for depth in range(EXACT_SHARDS, 1, -1):
        found = _search(queue, depth)
        if found is not None:
            return found
    return (queue,)


def _cell_candidates(queue: str, depth: int) -> list[tuple[str, int]]:
    """One ``(tag, slot)`` per cell that the ranges of every count up to ``depth`` cut
    the slot space into (the smallest ``k`` there), in slot order: two slots of one
    cell are alike to the search."""
    cuts = sorted({-(-j * SLOTS // m) for m in range(1, depth + 1) for j in range(m)})
    cells: dict[int, tuple[str, int]] = {}
    for k in range(_MAX_TRIES):
        if len(cells) == len(cuts):
            break
        tag = _candidate(queue, k)
        slot = slot_of(tag)
        cells.setdefault(bisect.bisect_right(cuts, slot) - 1, (tag, slot))
    return [cells[cell] for cell in sorted(cells)]


class _OutOfSteps(Exception):
    """The exact search took :data:`_SEARCH_STEPS` steps."""


def _search(queue: str, depth: int) -> tuple[str, ...] | None:
    """``depth`` tags, ``queue`` first, whose first n sit in distinct n-ranges for
    every n up to ``depth``; None if the search runs out of steps."""
    candidates = _cell_candidates(queue, depth)
    tags, slots = [queue], [slot_of(queue)]
    steps = 0

    def distance(slot: int) -> int:
        return min(min(abs(slot - s), SLOTS - abs(slot - s)) for s in slots)

    def extend() -> bool:
        nonlocal steps
        steps += 1
        if len(tags) == depth:
            return True
        if steps > _SEARCH_STEPS:
            raise _OutOfSteps
        n = len(tags) + 1
        taken = {shard_range(s, n) for s in slots}
        if len(taken) < len(slots):
            return False  # two of the tags so far share a range of n: no n-th helps
        free = [c for c in candidates if shard_range(c[1], n) not in taken and c[0] not in tags]
        for tag, slot in sorted(free, key=lambda c: -distance(c[1])):
            tags.append(tag)
            slots.append(slot)
            if extend():
                return True
            tags.pop()
            slots.pop()
        return False

    try:
        return tuple(tags) if extend() else None
    except _OutOfSteps:
        return None


@functools.lru_cache(maxsize=256)
def _widest_gap_tags(queue: str) -> tuple[str, ...]:
    """:data:`MAX_SHARDS` tags: the exact ones, then each next in the middle of the
    widest gap so far (ties: the lowest slot)."""
    first_tag: dict[int, str] = {}  # the tag of each slot with the smallest k
    for k in range(_MAX_TRIES):
        if len(first_tag) == SLOTS:
            break
        tag = _candidate(queue, k)
        first_tag.setdefault(slot_of(tag), tag)
    else:  # never met (about 170,000 tries cover every slot), but never a hang either
        raise ConfigError(f"no hash tags found for the shards of queue {queue!r}")
    tags = list(_exact_tags(queue))
    ordered = sorted(map(slot_of, tags))
    # Gaps as (-width, start): the widest first, then the lowest start.
    after = ordered[1:] + ordered[:1]
    gaps = [(-((b - a) % SLOTS or SLOTS), a) for a, b in zip(ordered, after, strict=True)]
    heapq.heapify(gaps)
    while len(tags) < MAX_SHARDS:
        width, start = heapq.heappop(gaps)
        half = -width // 2
        middle = (start + half) % SLOTS
        tags.append(first_tag[middle])
        heapq.heappush(gaps, (-half, start))
        heapq.heappush(gaps, (-(-width - half), middle))
    return tuple(tags)
