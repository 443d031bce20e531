"""Every Redis key Sergeant uses, built in one place.

All keys of one queue share the hash tag ``{<queue>}``, so a queue lives in one
Redis Cluster slot and every Lua script touches keys of one slot only. With several
independent nodes, every node holds its own copy of these keys, as each holds part
of the queue (see ``spread``); keys and locks live on one node (:func:`node_index`).
On a sharded cluster (``shards=N``) each shard's copy takes its own tag (its
``queue_keys(tag)``, ``flow_node(tag, ...)``; see ``shards``), shard 0 the queue's.

Layout of queue ``emails``. Every queued, leased or dead item is one *entry*: a
25-byte header then the pushed payload (see :mod:`sergeant.connector.redis.entries`).
The header holds the priority the item was pushed with (``H``/``N``: release and
reclaim return it there), its id (20 characters, made by the pushing client) and
the number of its earlier deliveries that ended without an acknowledgement. Entries
move whole between the structures below, so the hot path never touches a per-item
key: a push is one RPUSH, a lease one move of the list's head to the batch's list
plus one record per batch. ::

    sergeant:{emails}:ready:high      list    ready HIGH entries, head handed out first
    sergeant:{emails}:ready:normal    list    ready NORMAL entries, head handed out first
    sergeant:{emails}:delayed:high    zset    entry -> eta (Unix seconds, server clock), HIGH
    sergeant:{emails}:delayed:normal  zset    entry -> eta, NORMAL
    sergeant:{emails}:leases          hash    per leased batch (fencing token T):
                                              'T:f' -> one '1'/'0' per entry (still held?),
                                              'T:n' -> how many are still held,
                                              'T:o' -> the owner (worker process) of T,
                                              'T:a' -> acknowledgements its call made;
                                              '#seq' -> the lease counter as of the last
                                              reservation (a token above it is unknown)
    sergeant:{emails}:batch:T         list    leased batch T's entries, in slot order (slot
                                              k is element k - 1), deleted with its record
    sergeant:{emails}:leased          zset    token -> lease deadline (Unix s, server clock)
    sergeant:{emails}:leased:count    string  items under lease, all batches together
    sergeant:{emails}:leases:seq      string  last fencing token reserved (clients take
                                              blocks with INCRBY and choose each lease's
                                              token from theirs; never reset, so tokens
                                              never repeat)
    sergeant:{emails}:owned           zset    'owner|T' (T zero-padded), score 0: the
                                              batches of each owner, in lease order
    sergeant:{emails}:dead            list    dead entries, oldest first
    sergeant:{emails}:dead:info       hash    item id -> JSON {reason, error, deliveries, dead_at}
    sergeant:{emails}:wake            list    tokens pushed on new ready items; idle leases BLPOP it
    sergeant:{emails}:unique          hash    unique key -> item id (20 chars) + task id of the
                                              item holding it (``push_unique``)
    sergeant:{emails}:unique:items    hash    item id -> the unique key it holds; absent when
                                              no item of the queue holds one
    sergeant:{emails}:group:items     hash    item id -> its group (``push_grouped``), while
                                              the item lives (ready, delayed, leased, dead);
                                              absent when the queue has no grouped item
    sergeant:{emails}:group:ring      list    the ring: '' (the ungrouped items) then each
                                              group with ready items; a lease visits it
                                              from the head and rotates each visited member
                                              to the tail; absent when no group is ready
    sergeant:{emails}:group:state     hash    'r:<group>' its ready items, 'l:<group>' its
                                              leased items, '#H'/'#N' ready grouped items
                                              per priority
    sergeant:{emails}:group:H:<group> list    a group's ready HIGH entries (and ':N:' NORMAL)
    sergeant:{emails}:group:t:<group> list    a group's last lease times (its rate limit)
    sergeant:{emails}:flow:<flow>:<node>
                                      hash    one held workflow step: 'n' members needed,
                                              'c' recorded, 'r' released, 'p' its entry
                                              until pushed, 'v:<member>' each value;
                                              PX TTL from its last hold or advance

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

__all__ = [
    "QueueKeys",
    "batch_list",
    "flow_node",
    "group_list",
    "key",
    "lock",
    "node_index",
    "notify",
    "queue_keys",
]

PREFIX = "sergeant"


class QueueKeys(typing.NamedTuple):
    """The keys of one queue; see the module docstring for their types.

    Every queue script gets all of them, in this order (``lua/_lib.lua`` names
    the positions), so the tuple itself is the script's KEYS.
    """

    high: str
    normal: str
    delayed_high: str
    delayed_normal: str
    leases: str
    leased: str
    leased_count: str
    lease_seq: str
    dead: str
    dead_info: str
    wake: str
    owned: str
    unique: str
    unique_items: str
    group_items: str
    group_ring: str
    group_state: str


@functools.lru_cache(maxsize=4096)
def queue_keys(queue: str) -> QueueKeys:
    """The keys of ``queue``, all under the hash tag ``{queue}``."""
    base = f"{PREFIX}:{{{queue}}}:"
    return QueueKeys(
        high=base + "ready:high",
        normal=base + "ready:normal",
        delayed_high=base + "delayed:high",
        delayed_normal=base + "delayed:normal",
        leases=base + "leases",
        leased=base + "leased",
        leased_count=base + "leased:count",
        lease_seq=base + "leases:seq",
        dead=base + "dead",
        dead_info=base + "dead:info",
        wake=base + "wake",
        owned=base + "owned",
        unique=base + "unique",
        unique_items=base + "unique:items",
        group_items=base + "group:items",
        group_ring=base + "group:ring",
        group_state=base + "group:state",
    )


def group_list(k: QueueKeys, group: str, high: bool) -> str:
    """The list of a group's ready entries of one priority, under the queue's hash tag."""
    return k.group_ring[: -len("ring")] + ("H:" if high else "N:") + group


def batch_list(k: QueueKeys, token: int) -> str:
    """The list of leased batch ``token``'s entries, under the queue's hash tag."""
    return f"{k.leases[: -len('leases')]}batch:{token}"


def flow_node(queue: str, flow_id: str, node: int) -> str:
    """The hash of one held workflow step, under the hash tag of ``queue`` (on a
    sharded cluster: of its shard)."""
    return f"{PREFIX}:{{{queue}}}:flow:{flow_id}:{node}"


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
