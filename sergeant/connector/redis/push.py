"""The Redis push: every push of entries on one node (or one cluster) goes through
:func:`push`, or :func:`push_unique` when the entries hold unique keys (a once push,
which marks a key, is in :mod:`sergeant.connector.redis.once`).

``push.lua`` defines what a push does; the other cases send the same commands
without the script, where the script costs more than the work:

=====================================  ==========================================
case                                   sent
=====================================  ==========================================
a Redis Cluster, ready, 100 entries    as on one server, on the lane of the
or more                                queue's primary (a redirection: it did
                                       not run, and goes as the next case)
a Redis Cluster, any other push        one ``push.lua`` call (a cluster pipeline
                                       refuses EVALSHA; the script writes in
                                       chunks)
one server, ready, 100 entries or      MULTI, RPUSH per 10,000 entries, RPUSH
more                                   wake tokens, LTRIM, EXEC: raw on the lane,
                                       each RPUSH written once packed (Redis
                                       parses it meanwhile), or a redis-py
                                       pipeline if busy
one server, ready, fewer than 100      RPUSH entries, RPUSH wake tokens, LTRIM:
entries, lane free                     one raw write on the lane, no MULTI
one server, delayed; or ready, fewer   one ``push.lua`` call
than 100, lane busy; up to 2,000
one server, delayed, more than 2,000   MULTI, one ``push.lua`` call per 2,000
                                       entries, EXEC (wake token from the first)
a unique push (:func:`push_unique`),   one ``push_unique.lua`` call: the keys are
any size, server or cluster            checked and set, and the entries whose
                                       key was free appended, in one step
a once push (``push_once``, in         one ``push_once.lua`` call: the mark set
``once.py``), one entry, server or     (``SET NX PX``) and, if it was free, the
cluster                                entry appended, in one step
=====================================  ==========================================

Why the fast paths (loopback, 40-byte payloads, one push): ``push.lua`` copies
every entry into Lua and out again, and the raw lane write
(:mod:`sergeant.connector.redis.lane`) skips redis-py's per-call work, so a lane
push takes about 0.75x the wall time of one script call for 1 to 99 entries and
about 0.7x for 1,000 to 10,000, at about the same client CPU. A redis-py
pipeline costs about three times the client CPU of one script call at 100
entries, so below that a busy lane falls back to the script. "Delayed" is
decided by the server's clock (an eta already past is ready), so a push with an
eta always runs the script.

The guarantee, the same in every case: the entries are appended, in the order
given, by one command or script (no other client sees part of them), to the
tail of their priority's list (ready) or to its delayed set (scored by the
eta); wake tokens for blocked leases follow (one per ready entry, one for a
delayed push, at most :data:`~sergeant.connector.redis.scripts.WAKE_TOKENS`
kept); the push returns the number of entries. A node out of memory refuses
the push (``BrokerFull``) and stores none of it.

Every case is also one transaction with its wake tokens but one: the small
ready push on the lane, where MULTI/EXEC measured 3-7% more client CPU per
one-by-one push (``Worker.push_task``: two more commands and replies). There the
wake-token commands are separate: a connection broken after the entries' RPUSH
(the push then raises ``ConnectionLost``; its entries may be stored) can lose
the tokens, and another client can see the entries a moment before them. Either
only delays a lease blocked on the queue to its next poll (at most
``BLOCK_SLICE_SECONDS``); leases take entries from the lists, never from the
tokens, so nothing is lost or handed out twice.
"""

from __future__ import annotations

import functools
import itertools
import typing

import redis

from sergeant.connector.redis import entries, keys
from sergeant.connector.redis.cluster_lanes import ClusterLanes, redirected
from sergeant.connector.redis.lane import Lane, bulk, command
from sergeant.connector.redis.nodes import Node
from sergeant.connector.redis.scripts import WAKE_TOKENS

__all__ = ["MIN_MULTI_PUSH", "PLAIN_PUSH_CHUNK", "PUSH_CHUNK", "push", "push_unique"]

#: Most entries per push script call; a bigger push runs several in one MULTI/EXEC.
PUSH_CHUNK = 2000
#: Fewest ready entries pushed in one MULTI/EXEC (below: bare on the lane, or the script).
MIN_MULTI_PUSH = 100
#: Entries per RPUSH of a ready push.
PLAIN_PUSH_CHUNK = 10_000

_MULTI, _EXEC = command("MULTI"), command("EXEC")


def push(
    node: Node,
    k: keys.QueueKeys,
    high: bool,
    eta: float,
    items: entries.NewEntries,
) -> int:
    """Append entries (ready, or delayed until ``eta``) on one node; the cases and
    what they guarantee are in the module docstring.

    Returns:
        ``len(items)``.

    Raises:
        ConnectorError: as the node's error boundary translates it (``BrokerFull``
            when the node is out of memory; then nothing was stored).
    """
    count = len(items)
    if count == 0:
        return 0
    with node:
        lanes = node.cluster_lanes
        if lanes is not None:  # a cluster (an isinstance would cost ~1 µs)
            if eta <= 0 and count >= MIN_MULTI_PUSH and _cluster_lane_push(lanes, k, high, items):
                return count
            return node.scripts.push(k, high, eta, items.made())
        if eta <= 0 and node.lane is not None and _lane_push(node.lane, k, high, items):
            return count
        made = items.made()
        if eta <= 0 and count >= MIN_MULTI_PUSH:
            return _plain_push(typing.cast("redis.Redis", node.client), k, high, made)
        if count <= PUSH_CHUNK:
            return node.scripts.push(k, high, eta, made)
        pipe = node.client.pipeline(transaction=True)
        for start in range(0, count, PUSH_CHUNK):
            # One script's wake tokens for the whole push: the first chunk's, which
            # holds at least WAKE_TOKENS entries.
            chunk = made[start : start + PUSH_CHUNK]
            node.scripts.push(k, high, eta, chunk, pipe, wake=start == 0)
        pipe.execute()
    return count


def push_unique(
    node: Node,
    k: keys.QueueKeys,
    high: bool,
    eta: float,
    items: typing.Sequence[bytes],
    unique_keys: typing.Sequence[str | None],
    task_ids: typing.Sequence[str],
) -> list[str]:
    """Append the entries whose unique key is free, in one ``push_unique.lua`` call
    (the guarantee of the module docstring holds for the entries stored).

    Returns:
        Per entry, the task id holding its key (its own when it was stored).
    """
    if not items:
        return []
    triples: list[bytes | str] = []
    for entry, key, task_id in zip(items, unique_keys, task_ids, strict=True):
        triples += (entry, "" if key is None else key, task_id)
    with node:
        return node.scripts.push_unique(k, high, eta, triples)


def _lane_push(lane: Lane, k: keys.QueueKeys, high: bool, items: entries.NewEntries) -> bool:
    """A ready push written raw on the lane; False if it is busy."""
    count = len(items)
    head, wake = _lane_parts(k.high if high else k.normal, k.wake, min(count, WAKE_TOKENS))
    if count < MIN_MULTI_PUSH:
        # Not a transaction: MULTI/EXEC would cost 3-7% of a one-by-one push (see above).
        return lane.try_send(_rpush(head, items) + wake, 3) is not None
    chunks = range(0, count, PLAIN_PUSH_CHUNK)
    # MULTI, each RPUSH, the wake RPUSH and LTRIM, EXEC; each RPUSH written as soon as
    # it is packed, so Redis parses it while the next one is (nothing runs before EXEC).
    rpushes = (_rpush(head, items.part(i, i + PLAIN_PUSH_CHUNK)) for i in chunks)
    replies = lane.try_send_parts(
        itertools.chain((_MULTI,), rpushes, (wake + _EXEC,)), len(chunks) + 4
    )
    if replies is None:
        return False
    # An error queuing a command (out of memory) raises as its reply is read; one
    # running it comes back in EXEC's array, which the lane hands back as it is.
    for reply in replies[-1]:
        if isinstance(reply, redis.exceptions.RedisError):
            raise reply
    return True


def _cluster_lane_push(
    lanes: ClusterLanes, k: keys.QueueKeys, high: bool, items: entries.NewEntries
) -> bool:
    """A big ready push on a cluster as on one server, on the lane of the queue's
    primary; False if that lane is off or busy, or the primary redirected the push.

    A redirection (MOVED, ASK, TRYAGAIN, CLUSTERDOWN) refuses a command as it is
    queued, so the transaction's EXEC runs nothing: the push may go again.
    """
    lane = lanes.for_key(k.normal)  # every key of a queue is in one slot
    if lane is None:
        return False
    try:
        return _lane_push(lane, k, high, items)
    except redis.exceptions.RedisError as exc:
        if lanes.after_error(exc) and redirected(exc):
            return False  # it did not run: redis-py sends it again and learns the new map
        raise  # an error reply, or a broken connection (whether it ran is unknown)


def _rpush(head: bytes, items: entries.NewEntries) -> bytes:
    """The raw RPUSH of ``items`` after its ``head`` (command name and key)."""
    return b"*%d\r\n%s%s" % (2 + len(items), head, items.framed())


@functools.lru_cache(maxsize=1024)
def _lane_parts(ready: str, wake: str, tokens: int) -> tuple[bytes, bytes]:
    """The fixed parts of a lane push: the head of the RPUSH on the ready list (for
    :func:`_rpush`), then ``tokens`` wake tokens and the cap on them."""
    rpush = command("RPUSH", wake, *["1"] * tokens)
    return bulk("RPUSH") + bulk(ready), rpush + command("LTRIM", wake, -WAKE_TOKENS, -1)


def _plain_push(
    client: redis.Redis, k: keys.QueueKeys, high: bool, items: typing.Sequence[bytes]
) -> int:
    """A big ready push as plain RPUSHes in one MULTI/EXEC: what ``push.lua`` does for a
    ready push (entries, then wake tokens), without copying every entry into Lua."""
    pipe = client.pipeline(transaction=True)
    ready = k.high if high else k.normal
    for start in range(0, len(items), PLAIN_PUSH_CHUNK):
        pipe.rpush(ready, *items[start : start + PLAIN_PUSH_CHUNK])
    pipe.rpush(k.wake, *["1"] * min(len(items), WAKE_TOKENS))
    pipe.ltrim(k.wake, -WAKE_TOKENS, -1)
    pipe.execute()
    return len(items)
