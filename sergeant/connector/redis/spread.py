"""Spreading one queue over independent Redis nodes, and the per-node steps of the connector.

With several independent nodes, every node holds its own copy of a queue's keys
(see :mod:`sergeant.connector.redis.keys`). A push is cut into contiguous parts,
one per node, starting at a node that rotates from call to call
(:func:`spread`), so pushes of one queue land evenly on every node; pops and
leases visit every node, again from a rotating start, so no node is left
undrained. Each node keeps FIFO within a priority and HIGH before NORMAL for what
it holds, but there is no order across nodes: the connector reports
``ordered = False``. Leases, reclaim and dead letters work per node; a
:class:`~sergeant.connector.Delivery` records its node in ``Delivery.node``.
"""

from __future__ import annotations

import itertools
import json
import random
import typing

import redis.cluster

from sergeant.connector._connector import DeadLetter, Delivery
from sergeant.connector.redis import keys
from sergeant.connector.redis.nodes import Node
from sergeant.connector.redis.settings import RedisSettings

__all__ = [
    "MIN_SPREAD_CHUNK",
    "PUSH_CHUNK",
    "Rotation",
    "connect",
    "dead_letters_of",
    "group_by_node",
    "lease_round",
    "push_on",
    "reclaim_on",
    "spread",
]

#: Most payloads per push script call; a bigger push runs several in one MULTI/EXEC.
PUSH_CHUNK = 2000
#: Fewest payloads worth a round trip of their own: a smaller push goes to one node.
MIN_SPREAD_CHUNK = 100


def connect(settings: RedisSettings) -> list[Node]:
    """One :class:`Node` per independent server, or a single one for a whole cluster."""
    if settings.cluster:
        return [Node(settings.nodes, 0, cluster=True)]
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


def spread(count: int, node_count: int) -> list[tuple[int, int]]:
    """Cut ``count`` payloads into contiguous ``(begin, end)`` parts, one per node at most.

    Parts differ in size by one at most, and none is smaller than
    :data:`MIN_SPREAD_CHUNK` unless the whole push is.
    """
    parts = max(1, min(node_count, count // MIN_SPREAD_CHUNK))
    size, extra = divmod(count, parts)
    bounds = []
    begin = 0
    for index in range(parts):
        end = begin + size + (1 if index < extra else 0)
        bounds.append((begin, end))
        begin = end
    return bounds


def push_on(
    node: Node,
    k: keys.QueueKeys,
    high: bool,
    eta: float,
    payloads: typing.Sequence[bytes],
) -> int:
    """Push ``payloads`` on one node (or cluster) atomically: one script, or one MULTI/EXEC.

    A cluster pipeline refuses EVALSHA, so a cluster gets one script call however big
    the push (``push.lua`` writes in bounded chunks itself).
    """
    count = len(payloads)
    with node:
        if count <= PUSH_CHUNK or isinstance(node.client, redis.cluster.RedisCluster):
            return node.scripts.push(k, high, eta, payloads)
        pipe = node.client.pipeline(transaction=True)
        for start in range(0, count, PUSH_CHUNK):
            node.scripts.push(k, high, eta, payloads[start : start + PUSH_CHUNK], pipe)
        pipe.execute()
    return count


def lease_round(
    nodes: list[Node], k: keys.QueueKeys, count: int, lease_seconds: float
) -> tuple[list[Delivery], int]:
    """One non-blocking lease over ``nodes`` in their order: ``(deliveries, wait_ms)``.

    ``wait_ms`` is -1 when nothing is delayed, else the milliseconds until the
    earliest delayed item (on any node visited) is due.
    """
    leased: list[Delivery] = []
    wait_ms = -1
    for node in nodes:
        with node:
            r = node.scripts.lease(k, count - len(leased), lease_seconds)
        if len(r) > 1:
            index, token = node.index, int(r[1])
            leased += [
                Delivery(payload, item_id.decode(), token, times, index)
                for item_id, payload, times in zip(r[2::3], r[3::3], r[4::3], strict=True)
            ]
            if len(leased) >= count:
                break
        elif r[0] >= 0 and (wait_ms < 0 or r[0] < wait_ms):
            wait_ms = r[0]
    return leased, wait_ms


def reclaim_on(node: Node, k: keys.QueueKeys, max_deliveries: int) -> tuple[int, int]:
    """Reclaim every expired lease held by one node, in bounded script calls.

    Returns:
        ``(requeued, dead_lettered)``.
    """
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
    by_node: dict[int, list[Delivery]] = {}
    for delivery in deliveries:
        by_node.setdefault(delivery.node, []).append(delivery)
    return dict(by_node)


def dead_letters_of(node: Node, k: keys.QueueKeys, limit: int) -> list[DeadLetter]:
    """Up to ``limit`` dead items held by one node, oldest first."""
    with node:
        r = node.scripts.dead_letters(k, limit)
    found = []
    for i in range(0, len(r), 3):
        info = json.loads(r[i + 2])
        found.append(
            DeadLetter(
                item_id=r[i].decode(),
                payload=r[i + 1],
                reason=str(info.get("reason", "")),
                error=str(info.get("error", "")),
                deliveries=int(info.get("deliveries", 0)),
                dead_at=float(info.get("dead_at", 0.0)),
                node=node.index,
            )
        )
    return found
