"""The Redis push: every push of entries on one node (or one cluster) goes through :func:`push`.

``push.lua`` defines what a push does; the other cases send the same commands
without the script, where the script costs more than the work:

====================================  ===========================================
case                                  sent
====================================  ===========================================
a Redis Cluster, any push             one ``push.lua`` call (a cluster pipeline
                                      refuses EVALSHA; the script writes in chunks)
one server, ready, lane free          MULTI, RPUSH per 10,000 entries, RPUSH wake
                                      tokens, LTRIM, EXEC: one raw write on the lane
one server, ready, lane busy,         the same MULTI/EXEC through a redis-py
100 entries or more                   pipeline
one server, delayed; or ready, lane   one ``push.lua`` call
busy, fewer than 100 entries; up to
2,000 entries
one server, delayed, more than        MULTI, one ``push.lua`` call per 2,000
2,000 entries                         entries, EXEC (wake token from the first only)
====================================  ===========================================

Why the fast paths (measured on a loopback, one push of 40-byte payloads):
``push.lua`` copies every entry into Lua and out again, and the raw lane write
(:mod:`sergeant.connector.redis.lane`) skips redis-py's per-call work, so the
lane's MULTI/EXEC takes about 0.75x the wall time of one script call for 1 to 99
entries and about 0.7x for 1,000 to 10,000, at about the same client CPU. A
redis-py pipeline costs about three times the client CPU of one script call at
100 entries, so below that a busy lane falls back to the script. Making the lane
write a transaction (MULTI/EXEC around its RPUSH, RPUSH, LTRIM) costs about 1%
on one-by-one pushes. "Delayed" is decided by the server's clock (an eta already
past is ready), so a push with an eta always runs the script.

The guarantee, the same in every case: a push is one transaction on its node,
so no other client sees part of it. Its entries are appended, in the order
given, to the tail of their priority's list (ready) or to its delayed set
(scored by the eta), with wake tokens for blocked leases (one per ready entry,
one for a delayed push, at most
:data:`~sergeant.connector.redis.scripts.WAKE_TOKENS` kept); it returns the
number of entries. A node out of memory refuses the whole push (``BrokerFull``):
nothing of it is stored.
"""

from __future__ import annotations

import functools
import typing

import redis
import redis.cluster

from sergeant.connector.redis import keys
from sergeant.connector.redis.lane import Lane, bulk, command, with_head
from sergeant.connector.redis.nodes import Node
from sergeant.connector.redis.scripts import WAKE_TOKENS

__all__ = ["MIN_PLAIN_PUSH", "PLAIN_PUSH_CHUNK", "PUSH_CHUNK", "push"]

#: Most entries per push script call; a bigger push runs several in one MULTI/EXEC.
PUSH_CHUNK = 2000
#: Fewest ready entries a busy lane leaves to a redis-py pipeline (below, the script).
MIN_PLAIN_PUSH = 100
#: Entries per RPUSH of a ready push.
PLAIN_PUSH_CHUNK = 10_000

_MULTI, _EXEC = command("MULTI"), command("EXEC")


def push(
    node: Node,
    k: keys.QueueKeys,
    high: bool,
    eta: float,
    items: typing.Sequence[bytes],
) -> int:
    """Append entries (ready, or delayed until ``eta``) on one node, in one transaction.

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
        if isinstance(node.client, redis.cluster.RedisCluster):
            return node.scripts.push(k, high, eta, items)
        if eta <= 0 and node.lane is not None and _lane_push(node.lane, k, high, items):
            return count
        if eta <= 0 and count >= MIN_PLAIN_PUSH:
            return _plain_push(node.client, k, high, items)
        if count <= PUSH_CHUNK:
            return node.scripts.push(k, high, eta, items)
        pipe = node.client.pipeline(transaction=True)
        for start in range(0, count, PUSH_CHUNK):
            # One script's wake tokens for the whole push: the first chunk's, which
            # holds at least WAKE_TOKENS entries.
            chunk = items[start : start + PUSH_CHUNK]
            node.scripts.push(k, high, eta, chunk, pipe, wake=start == 0)
        pipe.execute()
    return count


def _lane_push(lane: Lane, k: keys.QueueKeys, high: bool, items: typing.Sequence[bytes]) -> bool:
    """A ready push as one MULTI/EXEC written raw on the lane; False if it is busy."""
    head = _rpush_head(k.high if high else k.normal)
    parts = [_MULTI]
    for start in range(0, len(items), PLAIN_PUSH_CHUNK):
        parts.append(with_head(head, 2, items[start : start + PLAIN_PUSH_CHUNK]))
    parts.append(_wake_and_exec(k.wake, min(len(items), WAKE_TOKENS)))
    # MULTI, each RPUSH, the wake RPUSH and LTRIM, EXEC.
    replies = lane.try_send(b"".join(parts), len(parts) + 2)
    if replies is None:
        return False
    # An error queuing a command (out of memory) raises as its reply is read; one
    # running it comes back in EXEC's array, which the lane hands back as it is.
    for reply in replies[-1]:
        if isinstance(reply, redis.exceptions.RedisError):
            raise reply
    return True


@functools.lru_cache(maxsize=1024)
def _rpush_head(ready: str) -> bytes:
    """The head of an RPUSH on a ready list (its name), packed for :func:`with_head`."""
    return bulk("RPUSH") + bulk(ready)


@functools.lru_cache(maxsize=1024)
def _wake_and_exec(wake: str, tokens: int) -> bytes:
    """The end of a ready push: ``tokens`` wake tokens, the cap on them, and EXEC."""
    rpush = command("RPUSH", wake, *["1"] * tokens)
    return rpush + command("LTRIM", wake, -WAKE_TOKENS, -1) + _EXEC


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
