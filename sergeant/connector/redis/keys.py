"""Every Redis key Sergeant uses, built in one place.

All keys of one queue share the hash tag ``{<queue>}``, so a queue lives in one
Redis Cluster slot and every Lua script touches keys of one slot only. With several
independent nodes, every node holds its own copy of these keys, as each holds part
of the queue (see ``spread``); keys and locks live on one node (:func:`node_index`).

Layout of queue ``emails``. An item id is ``H`` or ``N`` (the priority it was pushed
with, which release and reclaim return it to) then a zero-padded counter, so ids
sort in push order: ``N000000000042``. ::

    sergeant:{emails}:seq             string  last item id allocated (INCRBY per push)
    sergeant:{emails}:items           hash    id -> payload (ready, delayed, leased and dead)
    sergeant:{emails}:high            list    ready HIGH ids, head handed out first
    sergeant:{emails}:normal          list    ready NORMAL ids, head handed out first
    sergeant:{emails}:delayed:high    zset    id -> eta (Unix seconds, server clock), HIGH
    sergeant:{emails}:delayed:normal  zset    id -> eta (Unix seconds, server clock), NORMAL
    sergeant:{emails}:leased          zset    '<id>:<deliveries>:<token>' -> lease deadline
                                              (Unix s, server clock), plus '-' -> +inf, kept
                                              so the key stays alive
    sergeant:{emails}:leases          string  last fencing token (INCR per leasing call;
                                              never reset, so tokens never repeat)
    sergeant:{emails}:deliveries      hash    id -> delivery count, for items not under lease
                                              (absent means 0; while leased the count is
                                              in the leased member)
    sergeant:{emails}:dead            list    dead ids, oldest first
    sergeant:{emails}:dead:info       hash    id -> JSON {reason, error, deliveries, dead_at}
    sergeant:{emails}:wake            list    tokens pushed on new ready items; idle leases BLPOP it

Outside queues::

    sergeant:key:<key>                string  key_set/key_get values, PX TTL
    sergeant:notify:<key>             list    one token per key_set_notify of <key>, PX TTL;
                                              wait_for_key BLPOPs it
    sergeant:{workers}:registry       hash    live-worker heartbeats (see ``registry``)
    sergeant:{workers}:registry:expiry zset   their expiries (see ``registry``)
    sergeant:lock:<name>              string  lock owner token, PX TTL
"""

from __future__ import annotations

import functools
import typing
import zlib

__all__ = ["QueueKeys", "key", "lock", "node_index", "notify", "queue_keys"]

PREFIX = "sergeant"


class QueueKeys(typing.NamedTuple):
    """The keys of one queue; see the module docstring for their types."""

    seq: str
    items: str
    high: str
    normal: str
    delayed_high: str
    delayed_normal: str
    leased: str
    leases: str
    deliveries: str
    dead: str
    dead_info: str
    wake: str


@functools.lru_cache(maxsize=4096)
def queue_keys(queue: str) -> QueueKeys:
    """The keys of ``queue``, all under the hash tag ``{queue}``."""
    base = f"{PREFIX}:{{{queue}}}:"
    return QueueKeys(
        seq=base + "seq",
        items=base + "items",
        high=base + "high",
        normal=base + "normal",
        delayed_high=base + "delayed:high",
        delayed_normal=base + "delayed:normal",
        leased=base + "leased",
        leases=base + "leases",
        deliveries=base + "deliveries",
        dead=base + "dead",
        dead_info=base + "dead:info",
        wake=base + "wake",
    )


def key(name: str) -> str:
    """The key holding the value of ``Connector.key_set(name, ...)``."""
    return f"{PREFIX}:key:{name}"


def notify(name: str) -> str:
    """The list that wakes ``Connector.wait_for_key(name, ...)`` callers."""
    return f"{PREFIX}:notify:{name}"


def lock(name: str) -> str:
    """The key holding the owner token of lock ``name``."""
    return f"{PREFIX}:lock:{name}"


def node_index(name: str, node_count: int) -> int:
    """The node (of ``node_count`` independent ones) that holds key or lock ``name``.

    CRC32 of the name, as Sergeant 0.27 sharded keys: stable across processes and
    restarts, so every worker agrees on where a queue lives.
    """
    if node_count == 1:
        return 0
    return zlib.crc32(name.encode()) % node_count
