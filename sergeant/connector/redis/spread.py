"""Spreading one queue over independent Redis nodes, and the per-node steps of the connector.

With several independent nodes, every node holds its own copy of a queue's keys
(see :mod:`sergeant.connector.redis.keys`). A push is cut into contiguous parts,
one per node, starting at a node that rotates from call to call
(:func:`spread`), so pushes of one queue land evenly on every node; pops and
leases visit every node, again from a rotating start, so no node is left
undrained. Each node keeps FIFO within a priority and HIGH before NORMAL for what
it holds, but there is no order across nodes: the connector reports
``ordered = False``. A sharded Redis Cluster (``shards=N``) is spread the same way:
its N nodes are views of the one cluster, each naming the queue's keys with its
shard's hash tag (see :mod:`sergeant.connector.redis.shards`). Leases, reclaim and
dead letters work per node; a :class:`~sergeant.connector.Delivery` records its
node in ``Delivery.node``. Each node's part of a push goes through
:func:`sergeant.connector.redis.push.push`.
"""

from __future__ import annotations

import itertools
import json
import operator
import random
import typing

from sergeant.connector._spread import MIN_SPREAD_CHUNK, spread
from sergeant.connector.base import DeadLetter, Delivery
from sergeant.connector.redis import entries
from sergeant.connector.redis.nodes import Node
from sergeant.connector.redis.settings import RedisSettings
from sergeant.connector.redis.tokens import lease_on

__all__ = [
    "FOLD_PULLS",
    "MIN_SPREAD_CHUNK",
    "Rotation",
    "connect",
    "dead_letters_of",
    "group_by_node",
    "home_first",
    "lease_reply",
    "lease_round",
    "reclaim_on",
    "settle_pairs",
    "spread",
]


#: A delivery's token, node and slot, read in C (``map``) over a whole batch.
_TOKEN = operator.itemgetter(Delivery._fields.index("token"))
_NODE = operator.itemgetter(Delivery._fields.index("node"))
_SLOT = operator.itemgetter(Delivery._fields.index("slot"))


def connect(settings: RedisSettings) -> list[Node]:
    """One :class:`Node` per independent server, or a single one for a whole cluster;
    a sharded cluster is one node per shard, views sharing one client (``Node.view``)."""
    if settings.cluster:
        first = Node(settings.nodes, 0, cluster=True, shard_count=settings.shards)
        return [first] + [first.view(shard) for shard in range(1, settings.shards)]
    return [Node([config], index, cluster=False) for index, config in enumerate(settings.nodes)]


class Rotation:
    """A start node that moves on by one at each call; thread-safe, random first.

    The first start is random so that many workers do not all begin at node 0.
    """

    def __init__(self) -> None:
        self._turn = itertools.count(random.randrange(1 << 16))

    def order(self, nodes: list[Node]) -> list[Node]:
        """``nodes`` rotated to the next start (unchanged for a single node)."""
        if len(nodes) == 1:
            return nodes
        # next() on itertools.count is atomic under the GIL: no lock needed.
        start = next(self._turn) % len(nodes)
        return nodes[start:] + nodes[:start]


#: Of a worker's pulls over several nodes that carry acknowledgements, all but one
#: in this many start on the node of those acknowledgements (folded into its lease:
#: one script, not two); that one starts where the rotation does.
FOLD_PULLS = 4


def home_first(nodes: list[Node], home: int) -> list[Node]:
    """``nodes`` with node ``home`` (its index) first, the others in their order."""
    return [n for n in nodes if n.index == home] + [n for n in nodes if n.index != home]


def lease_reply(r: list[typing.Any], node: int) -> tuple[int, list[Delivery]]:
    """``(acknowledged, deliveries)`` from a ``lease.lua`` reply of node ``node``."""
    leased = entries.leased(r[3], int(r[2]), node) if len(r) > 2 else []
    return int(r[1]), leased


def lease_round(
    nodes: list[Node],
    queue: str,
    count: int,
    lease_seconds: float,
    owner: str,
    acks: typing.Sequence[str] = (),
    one_batch: bool = False,
) -> tuple[list[Delivery], int, int]:
    """One non-blocking lease over ``nodes`` in their order: ``(deliveries, wait_ms, acked)``.

    With ``one_batch`` the deliveries are the batch of the first node that has ready
    items (a worker's pull: it then names its running task by slot alone, see
    ``names_running_by``); else each node in turn adds its batch until ``count``.
    ``acks`` (token, slots pairs) are acknowledged on the first node, in the same
    script. ``wait_ms`` is -1 when nothing is delayed, else the milliseconds until
    the earliest delayed item (on any node visited) is due.
    """
    leased: list[Delivery] = []
    wait_ms = -1
    acked = 0
    for node in nodes:
        r = lease_on(node, node.queue_keys(queue), count - len(leased), lease_seconds, owner, acks)
        acks = ()
        folded, got = lease_reply(r, node.index)
        acked += folded
        if got:
            leased += got
            if one_batch or len(leased) >= count:
                break
        elif r[0] >= 0 and (wait_ms < 0 or r[0] < wait_ms):
            wait_ms = r[0]
    return leased, wait_ms, acked


def settle_pairs(deliveries: typing.Sequence[Delivery]) -> list[str]:
    """Deliveries of one node as the scripts take them: token, slots, token, slots..."""
    if len(set(map(_TOKEN, deliveries))) == 1:  # one batch, the usual case: in C
        return [str(deliveries[0].token), entries.slot_ranges(list(map(_SLOT, deliveries)))]
    by_token: dict[int, list[int]] = {}
    for delivery in deliveries:
        by_token.setdefault(delivery.token, []).append(delivery.slot)
    pairs: list[str] = []
    for token, slots in by_token.items():
        pairs += (str(token), entries.slot_ranges(slots))
    return pairs


def reclaim_on(node: Node, queue: str, max_deliveries: int) -> tuple[int, int]:
    """Reclaim every expired lease of ``queue`` held by one node, in bounded script calls.

    Returns:
        ``(requeued, dead_lettered)``.
    """
    k = node.queue_keys(queue)
    requeued = dead = 0
    more = True
    while more:
        with node:
            again, died, more = node.scripts.reclaim(k, max_deliveries)
        requeued += again
        dead += died
    return requeued, dead


def group_by_node(
    deliveries: typing.Sequence[Delivery], node_count: int
) -> dict[int, typing.Sequence[Delivery]]:
    """``deliveries`` grouped by ``Delivery.node``; all on node 0 for a single node."""
    if node_count == 1:
        return {0: deliveries}
    nodes = set(map(_NODE, deliveries))
    if len(nodes) == 1:  # one node's batch, the usual case
        return {nodes.pop(): deliveries}
    by_node: dict[int, list[Delivery]] = {}
    for delivery in deliveries:
        by_node.setdefault(delivery.node, []).append(delivery)
    return dict(by_node)


def dead_letters_of(node: Node, queue: str, limit: int) -> list[DeadLetter]:
    """Up to ``limit`` dead items of ``queue`` held by one node, oldest first."""
    with node:
        r = node.scripts.dead_letters(node.queue_keys(queue), limit)
    found = []
    for entry, raw_info in zip(r[0::2], r[1::2], strict=True):
        info = json.loads(raw_info)
        item_id, payload = entries.split_entry(entry)
        found.append(
            DeadLetter(
                item_id=item_id,
                payload=payload,
                reason=str(info.get("reason", "")),
                error=str(info.get("error", "")),
                deliveries=int(info.get("deliveries", 0)),
                dead_at=float(info.get("dead_at", 0.0)),
                node=node.index,
            )
        )
    return found
