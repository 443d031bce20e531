"""The Redis connector: queues, leases and locks on Redis servers or a Redis Cluster.

Every operation on a queue touches only that queue's keys, which share one hash
tag (see :mod:`sergeant.connector.redis.keys`), so it runs on one Redis Cluster
slot. Each is one Lua script (``lua/*.lua``), atomic, but the push: its entries
land in one script or one RPUSH, with or without MULTI/EXEC around it and its
wake tokens; :mod:`sergeant.connector.redis.push` chooses the case and documents
them all. One server and a Redis Cluster
(one client routing each script by its queue's slot) keep strict order; several
independent servers spread each queue over all of them (see
:mod:`sergeant.connector.redis.spread`), with order per node only; a sharded
cluster (``shards=N``) spreads each queue the same way over N hash slots of the
cluster (:mod:`sergeant.connector.redis.shards`). Params are
described in :mod:`sergeant.connector.redis.settings`.

The class is built in layers: connections and visiting order in ``_nodeset``,
leases and their settling in ``_leasing``, held workflow steps in ``flows``, waiting
items listed and removed in ``_waiting``, the queue, dead-letter, key and worker
operations here.
"""

from __future__ import annotations

import contextlib
import math
import time
import typing

from sergeant.connector import _unique
from sergeant.connector.base import DeadLetter, Priority
from sergeant.connector.redis import entries, keys, notify, push, registry, spread
from sergeant.connector.redis._leasing import Leasing
from sergeant.connector.redis._nodeset import (
    BLOCK_SLICE_SECONDS,
    DELAYED_POLL_SECONDS,
    MIN_BLOCK_SECONDS,
    MULTI_NODE_BLOCK_SLICE_SECONDS,
)
from sergeant.connector.redis._waiting import WaitingItems
from sergeant.connector.redis.flows import Flows
from sergeant.connector.redis.groups import Groups
from sergeant.connector.redis.lock import Lock
from sergeant.connector.redis.nodes import Node
from sergeant.connector.redis.once import Once
from sergeant.connector.redis.permits import Permits
from sergeant.errors import BrokerFull, ConfigError

__all__ = [
    "BLOCK_SLICE_SECONDS",
    "DELAYED_POLL_SECONDS",
    "MIN_BLOCK_SECONDS",
    "MULTI_NODE_BLOCK_SLICE_SECONDS",
    "Connector",
    "Lock",
]

_PRIORITIES = ("NORMAL", "HIGH")


class Connector(Flows, Leasing, Once, Permits, WaitingItems, Groups):
    """Queues on Redis: one server, several independent servers, or one Redis Cluster.

    Connections open on first use and again in a forked child. Give exactly one of
    ``nodes``, ``url`` and ``urls``.

    Args:
        nodes: the Sergeant 0.27 form: one dict per independent server (``host``,
            ``port``, ``password``, ``database``, optional ``username``).
        url: one ``redis(s)://`` server or one ``redis(s)+cluster://`` cluster.
        urls: ``redis(s)://`` URLs of independent servers.
        cluster: True to treat ``nodes`` as the seed nodes of one Redis Cluster.
        ssl: True to speak TLS to ``nodes`` (URLs say it with ``rediss``).
        ssl_ca_certs, ssl_certfile, ssl_keyfile: TLS CA bundle, client certificate
            and its key (paths).
        shards: on a Redis Cluster only, how many hash slots (each on its own
            primary with the usual slot map) every queue is spread over, 1 to 1024;
            the URL may say it instead (``redis+cluster://h:7000?shards=3``). Above
            1 the connector is not ``ordered``: order holds per shard (see
            :mod:`sergeant.connector.redis.shards`).

    Raises:
        ConfigError: a missing, doubled or malformed parameter, named with its value.
    """

    name = "redis"
    supports_blocking = True

    # -- ready and delayed items ------------------------------------------------

    def push_many(
        self,
        queue: str,
        payloads: typing.Sequence[bytes],
        priority: Priority = "NORMAL",
        consumable_from: float = 0.0,
    ) -> int:
        """Append payloads, atomically per node; several nodes get parts (``spread``).

        Never retried inside (a retried push could land twice): it returns, or raises
        ``BrokerUnavailable`` (no connection in 2 s) or ``ConnectionLost`` (no reply in
        5 s; that node's part may or may not be stored), so it ends within about 7 s
        per node (see ``nodes.DEFAULT_SOCKET_*``). A node out of memory refuses its
        part with ``BrokerFull`` (logged once a minute, not per push).
        """
        if priority not in _PRIORITIES:
            raise ConfigError(f"priority is {priority!r}; use 'NORMAL' or 'HIGH'")
        count = len(payloads)
        if count == 0:
            return 0
        self._record_shards(queue)
        high = priority == "HIGH"
        items = entries.NewEntries(self._ids, b"H" if high else b"N", payloads)
        nodes = self._rotated()
        try:
            for node, (begin, end) in zip(nodes, spread.spread(count, len(nodes)), strict=False):
                part = items.part(begin, end)
                push.push(node, node.queue_keys(queue), high, consumable_from, part)
        except BrokerFull as exc:
            self._refusals.refused(exc)
            raise
        if self._refusals.count:
            self._refusals.accepted()
        return count

    def push_unique(
        self,
        queue: str,
        items: typing.Sequence[bytes],
        unique_keys: typing.Sequence[str | None],
        task_ids: typing.Sequence[str],
        priority: Priority = "NORMAL",
        consumable_from: float = 0.0,
    ) -> list[str]:
        """Push items holding unique keys (``push.push_unique``); see the contract.

        On several independent nodes each keyed item goes to the node its key hashes
        to, so each key is checked and set on one node; each node's part is atomic.
        """
        if priority not in _PRIORITIES:
            raise ConfigError(f"priority is {priority!r}; use 'NORMAL' or 'HIGH'")
        _unique.check(items, unique_keys, task_ids)
        self._record_shards(queue)
        high = priority == "HIGH"
        made = entries.make_entries(self._ids, b"H" if high else b"N", items)
        nodes = self._all()
        holders = [""] * len(items)
        try:
            for index, positions in _unique.groups(queue, unique_keys, len(nodes)).items():
                part = push.push_unique(
                    nodes[index],
                    nodes[index].queue_keys(queue),
                    high,
                    consumable_from,
                    [made[p] for p in positions],
                    [unique_keys[p] for p in positions],
                    [task_ids[p] for p in positions],
                )
                for position, holder in zip(positions, part, strict=True):
                    holders[position] = holder
        except BrokerFull as exc:
            self._refusals.refused(exc)
            raise
        return holders

    def pop_many(self, queue: str, count: int) -> list[bytes]:
        """Remove and return up to ``count`` ready items, every node visited; see the contract."""
        if count <= 0:
            return []
        return entries.payloads(_pop_round(self._rotated(), queue, count))

    def sending_together(self) -> contextlib.AbstractContextManager[None]:
        """One server's lane, corked (``Lane.corked``): one write for the block's pulls."""
        nodes = self._all()
        lane = nodes[0].lane if len(nodes) == 1 else None
        return lane.corked() if lane is not None else contextlib.nullcontext()

    def start_pop(self, queue: str, count: int) -> typing.Callable[[], list[bytes]]:
        """Send :meth:`pop_many` now; the function returned reads it.

        The pop of the rotation's first node is in flight on its lane; with several
        nodes, when it brings fewer than ``count``, reading it pops the rest from the
        other nodes in turn, as :meth:`pop_many` does.
        """
        if count <= 0:
            return super().start_pop(queue, count)
        nodes = self._rotated()
        node = nodes[0]
        with node:
            finish = node.scripts.start_pop(node.queue_keys(queue), count)

        def read() -> list[bytes]:
            with node:
                popped: list[bytes] = finish()
            return entries.payloads(_pop_round(nodes[1:], queue, count, popped))

        return read

    def wait_for_items(self, queue: str, block_seconds: float) -> bool:
        """Wait (BLPOP on the queue's wake list) until an item is ready; see the contract.

        Each BLPOP lasts at most :data:`BLOCK_SLICE_SECONDS` (with several nodes
        :data:`MULTI_NODE_BLOCK_SLICE_SECONDS`, each on the next node), and much less
        while delayed items are pending, since no push wakes the wait when they fall due.
        """
        deadline = time.monotonic() + block_seconds
        while True:
            ready = self.length(queue)
            if ready > 0:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            timeout = self._block_slice(remaining)
            if self.length(queue, include_delayed=True) > ready:
                timeout = min(timeout, DELAYED_POLL_SECONDS)
            self._wait_on_wake(self._rotated()[0], queue, timeout)

    def length(self, queue: str, include_delayed: bool = False) -> int:
        """Ready items (due delayed ones included), plus not-yet-due ones when asked."""
        return self._sum(lambda node: node.scripts.length(node.queue_keys(queue), include_delayed))

    def length_by_priority(self, queue: str) -> dict[Priority, int]:
        """Ready items per priority, summed over the nodes; see the contract."""
        high = normal = 0
        for node in self._all():
            with node:
                k = node.queue_keys(queue)
                node_high, node_normal = registry.length_by_priority(node.client, k)
            high, normal = high + node_high, normal + node_normal
        return {"HIGH": high, "NORMAL": normal}

    def purge(self, queue: str) -> int:
        """Delete every ready and delayed item of a queue; returns how many."""
        return self._sum(lambda node: node.scripts.purge(node.queue_keys(queue)))

    # -- dead letters -----------------------------------------------------------

    def dead_letters(self, queue: str, limit: int = 100) -> list[DeadLetter]:
        """Up to ``limit`` dead items, oldest first, without removing them."""
        if limit <= 0:
            return []
        nodes = self._all()
        found = [dead for node in nodes for dead in spread.dead_letters_of(node, queue, limit)]
        if len(nodes) > 1:
            found.sort(key=lambda dead: dead.dead_at)
        return found[:limit]

    def requeue_dead(self, queue: str, limit: int = 0) -> int:
        """Move up to ``limit`` (0 = all) dead items to the tail of NORMAL, each on its node."""
        total = 0
        for node in self._rotated():
            if limit and total >= limit:
                break
            with node:
                k = node.queue_keys(queue)
                total += node.scripts.requeue_dead(k, limit - total if limit else 0)
        return total

    def purge_dead(self, queue: str) -> int:
        """Delete every dead item of a queue; returns how many."""
        return self._sum(lambda node: node.scripts.purge_dead(node.queue_keys(queue)))

    def dead_count(self, queue: str) -> int:
        """Number of dead items of a queue."""
        return self._sum(lambda node: int(node.client.llen(node.queue_keys(queue).dead)))

    # -- keys and locks -----------------------------------------------------------

    def key_set(self, key: str, value: bytes, ttl_seconds: float | None = None) -> None:
        """Store ``value`` under ``key``, expiring after ``ttl_seconds`` (ms precision)."""
        node = self._node_for(key)
        px = None if ttl_seconds is None else max(1, math.ceil(ttl_seconds * 1000))
        with node:
            node.client.set(keys.key(key), value, px=px)

    def key_get(self, key: str) -> bytes | None:
        """The value under ``key``, or None if missing or expired."""
        node = self._node_for(key)
        with node:
            value = node.client.get(keys.key(key))
        # redis-py types replies as ``bytes | str``; this client never decodes them.
        return value.encode() if isinstance(value, str) else value

    def key_set_notify(self, key: str, value: bytes, ttl_seconds: float) -> None:
        """Store ``value`` and wake :meth:`wait_for_key` callers (see ``notify``)."""
        node = self._node_for(key)
        with node:
            notify.set_and_notify(node.client, key, value, ttl_seconds)

    def wait_for_key(self, key: str, timeout_seconds: float | None) -> bytes | None:
        """The value under ``key``, waiting with BLPOP up to ``timeout_seconds``."""
        node = self._node_for(key)
        with node:
            return notify.wait(node.client, key, timeout_seconds)

    def key_delete(self, key: str) -> bool:
        """Delete ``key``; True if it existed."""
        node = self._node_for(key)
        with node:
            return bool(node.client.delete(keys.key(key)))

    def lock(self, name: str) -> Lock:
        """A lock object for ``name`` (not yet acquired)."""
        return Lock(name, self._node_for)

    # -- live workers (see ``registry``: kept on the first node) ---------------------

    def register_worker(self, worker_id: str, info: bytes, ttl_seconds: float) -> None:
        """Publish or refresh a worker's heartbeat; see the contract."""
        node = self._all()[0]
        with node:
            registry.register(node.client, worker_id, info, ttl_seconds)

    def unregister_worker(self, worker_id: str) -> bool:
        """Remove a worker's heartbeat; see the contract."""
        node = self._all()[0]
        with node:
            return registry.unregister(node.client, worker_id)

    def workers(self) -> list[bytes]:
        """The info of every live worker; see the contract."""
        node = self._all()[0]
        with node:
            return registry.live(node.client)


def _pop_round(
    nodes: list[Node], queue: str, count: int, popped: list[bytes] | None = None
) -> list[bytes]:
    """``popped`` (entries already popped) topped up to ``count`` from ``nodes`` in
    their order, each visited only while some are missing."""
    popped = [] if popped is None else popped
    for node in nodes:
        if len(popped) >= count:
            break
        with node:
            popped += node.scripts.pop(node.queue_keys(queue), count - len(popped))
    return popped
