"""The Redis connector: queues, leases and locks on Redis servers or a Redis Cluster.

Every operation on a queue is one Lua script (``lua/*.lua``) touching only that
queue's keys, which share one hash tag (see :mod:`sergeant.connector.redis.keys`),
so it is atomic and runs on one Redis Cluster slot. One server and a Redis Cluster
(one client routing each script by its queue's slot) keep strict order; several
independent servers spread each queue over all of them (see
:mod:`sergeant.connector.redis.spread`), with order per node only. Params are
described in :mod:`sergeant.connector.redis.settings`.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
import typing

from sergeant import _full
from sergeant.connector import _connector
from sergeant.connector._connector import DeadLetter, Delivery, Priority, ReclaimResult
from sergeant.connector.redis import entries, keys, notify, registry, spread, tokens
from sergeant.connector.redis.lock import Lock
from sergeant.connector.redis.nodes import Node
from sergeant.connector.redis.scripts import Scripts
from sergeant.connector.redis.settings import RedisSettings, parse_params
from sergeant.errors import BrokerFull, ConfigError, ConnectorError

__all__ = ["Connector", "Lock"]

#: Longest single BLPOP of a blocking lease (seconds); below the socket timeout.
BLOCK_SLICE_SECONDS = 2.0
#: Longest single BLPOP with several independent nodes (seconds): a push may land on
#: another node than the one waited on, so the wait moves on to the next node soon.
MULTI_NODE_BLOCK_SLICE_SECONDS = 0.05
#: Shortest BLPOP timeout (seconds): Redis reads a timeout that rounds to 0 ms as "forever".
MIN_BLOCK_SECONDS = 0.01
#: Longest BLPOP of ``wait_for_items`` while delayed items are pending (seconds).
DELAYED_POLL_SECONDS = 0.05

_PRIORITIES = ("NORMAL", "HIGH")

logger = logging.getLogger(__name__)

#: A settling script run on one node: (scripts, keys, token/slots pairs) -> count.
_Settle = typing.Callable[[Scripts, keys.QueueKeys, list[str]], int]


class Connector(_connector.Connector):
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

    Raises:
        ConfigError: a missing, doubled or malformed parameter, named with its value.
    """

    name = "redis"
    supports_blocking = True

    def __init__(
        self,
        nodes: list[dict[str, typing.Any]] | None = None,
        *,
        url: str | None = None,
        urls: list[str] | None = None,
        cluster: bool = False,
        ssl: bool = False,
        ssl_ca_certs: str | None = None,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
    ) -> None:
        tls = {"ssl": ssl, "ssl_ca_certs": ssl_ca_certs, "ssl_certfile": ssl_certfile}
        tls["ssl_keyfile"] = ssl_keyfile
        self._settings: RedisSettings = parse_params(nodes, url, urls, cluster, tls)
        #: False with several independent nodes: order holds per node only.
        self.ordered = self._settings.cluster or len(self._settings.nodes) == 1
        self.overlaps_pulls = not self._settings.cluster and len(self._settings.nodes) == 1
        # Several independent nodes: one pull may join batches of several tokens.
        self.names_running_by: typing.Literal["slot", "token"] | None = (
            "slot" if self.ordered else None
        )
        self._nodes: list[Node] = []
        self._rotation = spread.Rotation()
        self._ids = entries.IdMaker()
        self._pid = -1
        self._closed = False
        self._connect_lock = threading.Lock()
        addresses = ",".join(node.address for node in self._settings.nodes)
        self._refusals = _full.Refusals(logger, f"Redis at {addresses}")

    # -- nodes ------------------------------------------------------------------

    def _all(self) -> list[Node]:
        if self._pid != os.getpid():
            self._connect()
        return self._nodes

    def _connect(self) -> None:
        with self._connect_lock:
            if self._closed:
                raise ConnectorError("this Redis connector is closed; create a new one")
            if self._pid != os.getpid():
                # In a forked child the parent's sockets are left alone (not closed).
                self._nodes = spread.connect(self._settings)
                self._pid = os.getpid()

    def _rotated(self) -> list[Node]:
        return self._rotation.order(self._all())

    def _sum(self, count: typing.Callable[[Node], int]) -> int:
        """``count`` run on every node (inside its error boundary), summed."""
        total = 0
        for node in self._all():
            with node:
                total += count(node)
        return total

    def _node_for(self, name: str) -> Node:
        nodes = self._all()
        return nodes[keys.node_index(name, len(nodes))]

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
        k = keys.queue_keys(queue)
        high = priority == "HIGH"
        items = entries.make_entries(self._ids, b"H" if high else b"N", payloads)
        nodes = self._rotated()
        try:
            for node, (begin, end) in zip(nodes, spread.spread(count, len(nodes)), strict=False):
                spread.push_on(node, k, high, consumable_from, items[begin:end])
        except BrokerFull as exc:
            self._refusals.refused(exc)
            raise
        if self._refusals.count:
            self._refusals.accepted()
        return count

    def pop_many(self, queue: str, count: int) -> list[bytes]:
        """Remove and return up to ``count`` ready items, every node visited; see the contract."""
        if count <= 0:
            return []
        k = keys.queue_keys(queue)
        popped: list[bytes] = []
        for node in self._rotated():
            with node:
                popped += node.scripts.pop(k, count - len(popped))
            if len(popped) >= count:
                break
        return entries.payloads(popped)

    def start_pop(self, queue: str, count: int) -> typing.Callable[[], list[bytes]]:
        """Send :meth:`pop_many` now on one server; the function returned reads it."""
        nodes = self._all()
        if len(nodes) > 1 or count <= 0:
            return super().start_pop(queue, count)
        node = nodes[0]
        with node:
            finish = node.scripts.start_pop(keys.queue_keys(queue), count)

        def read() -> list[bytes]:
            with node:
                return entries.payloads(finish())

        return read

    @staticmethod
    def _wait_on_wake(node: Node, k: keys.QueueKeys, timeout: float) -> None:
        with node:
            node.client.blpop([k.wake], timeout=max(timeout, MIN_BLOCK_SECONDS))

    def _block_slice(self, remaining: float) -> float:
        longest = BLOCK_SLICE_SECONDS if self.ordered else MULTI_NODE_BLOCK_SLICE_SECONDS
        return min(remaining, longest)

    def wait_for_items(self, queue: str, block_seconds: float) -> bool:
        """Wait (BLPOP on the queue's wake list) until an item is ready; see the contract.

        Each BLPOP lasts at most :data:`BLOCK_SLICE_SECONDS` (with several nodes
        :data:`MULTI_NODE_BLOCK_SLICE_SECONDS`, each on the next node), and much less
        while delayed items are pending, since no push wakes the wait when they fall due.
        """
        k = keys.queue_keys(queue)
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
            self._wait_on_wake(self._rotated()[0], k, timeout)

    def length(self, queue: str, include_delayed: bool = False) -> int:
        """Ready items (due delayed ones included), plus not-yet-due ones when asked."""
        k = keys.queue_keys(queue)
        return self._sum(lambda node: node.scripts.length(k, include_delayed))

    def length_by_priority(self, queue: str) -> dict[Priority, int]:
        """Ready items per priority, summed over the nodes; see the contract."""
        k = keys.queue_keys(queue)
        high = normal = 0
        for node in self._all():
            with node:
                node_high, node_normal = registry.length_by_priority(node.client, k)
            high, normal = high + node_high, normal + node_normal
        return {"HIGH": high, "NORMAL": normal}

    def purge(self, queue: str) -> int:
        """Delete every ready and delayed item of a queue; returns how many."""
        k = keys.queue_keys(queue)
        return self._sum(lambda node: node.scripts.purge(k))

    # -- leases -----------------------------------------------------------------

    def lease_many(
        self,
        queue: str,
        count: int,
        owner: str,
        lease_seconds: float,
        block_seconds: float = 0.0,
    ) -> list[Delivery]:
        """Lease up to ``count`` ready items as one batch per node; see :meth:`ack_and_lease`."""
        return self.ack_and_lease(queue, (), count, owner, lease_seconds, block_seconds)[1]

    def ack_and_lease(
        self,
        queue: str,
        acks: typing.Sequence[Delivery],
        count: int,
        owner: str,
        lease_seconds: float,
        block_seconds: float = 0.0,
    ) -> tuple[int, list[Delivery]]:
        """Acknowledge ``acks`` and lease up to ``count`` items, in one script on one node.

        Every node is visited, from a rotating start. Items leased on a node form one
        batch under one fencing token, recorded once (see ``keys``), so the server's
        work per item is one LPOP. An idle blocking lease waits on the wake list (fed
        by push, release and reclaim; on each node in turn when several), never past
        the earliest delayed eta. Each batch records ``owner`` (see ``extend_owned``) and
        a token this client chose (see ``tokens``), so a call repeated after a lost
        reply gets the same batch. With several nodes, acknowledgements go first, one
        script per node.
        """
        acked = 0
        if acks and (count <= 0 or not self.ordered):
            acked, acks = self.ack_many(queue, acks), ()
        if count <= 0:
            return acked, []
        k = keys.queue_keys(queue)
        nodes = self._rotated()
        pairs = spread.settle_pairs(acks)
        leased, wait_ms, folded = spread.lease_round(nodes, k, count, lease_seconds, owner, pairs)
        acked += folded
        if leased or block_seconds <= 0:
            return acked, leased
        deadline = time.monotonic() + block_seconds
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return acked, []
            timeout = self._block_slice(remaining)
            if wait_ms >= 0:
                timeout = min(timeout, wait_ms / 1000)
            nodes = self._rotated()
            self._wait_on_wake(nodes[0], k, timeout)
            leased, wait_ms, _ = spread.lease_round(nodes, k, count, lease_seconds, owner)
            if leased:
                return acked, leased

    def start_ack_and_lease(
        self,
        queue: str,
        acks: typing.Sequence[Delivery],
        count: int,
        owner: str,
        lease_seconds: float,
    ) -> typing.Callable[[], tuple[int, list[Delivery]]]:
        """Send :meth:`ack_and_lease` now on one server; the function returned reads it.

        With several nodes it runs at once, as the contract's default (and on a
        cluster the script itself runs at once: see ``Scripts.start_lease``).
        """
        nodes = self._all()
        if len(nodes) > 1 or count <= 0:
            return super().start_ack_and_lease(queue, acks, count, owner, lease_seconds)
        node = nodes[0]
        pairs = spread.settle_pairs(acks)
        k = keys.queue_keys(queue)
        finish = tokens.start_lease_on(node, k, count, lease_seconds, owner, pairs)

        def read() -> tuple[int, list[Delivery]]:
            return spread.lease_reply(finish(), node.index)

        return read

    def _settle(self, queue: str, deliveries: typing.Sequence[Delivery], call: _Settle) -> int:
        """Run ``call`` once per node holding some of ``deliveries``; sum its counts."""
        if not deliveries:
            return 0
        nodes = self._all()
        k = keys.queue_keys(queue)
        total = 0
        for index, group in spread.group_by_node(deliveries, len(nodes)).items():
            if not 0 <= index < len(nodes):
                continue  # a node no longer configured: its leases cannot be held
            node = nodes[index]
            with node:
                total += call(node.scripts, k, spread.settle_pairs(group))
        return total

    def ack_many(self, queue: str, deliveries: typing.Sequence[Delivery]) -> int:
        """Forget held leased items for good; returns how many (stale ones skipped)."""
        return self._settle(queue, deliveries, Scripts.ack)

    def release_many(self, queue: str, deliveries: typing.Sequence[Delivery]) -> int:
        """Put held leased items back at the head of their priority, uncounted."""
        return self._settle(queue, deliveries, Scripts.release)

    def extend_leases(
        self, queue: str, deliveries: typing.Sequence[Delivery], lease_seconds: float
    ) -> int:
        """Move held leases' deadlines to ``lease_seconds`` from now (server clock)."""
        return self._settle(
            queue, deliveries, lambda s, k, pairs: s.extend(k, pairs, lease_seconds)
        )

    def charge_many(
        self,
        queue: str,
        deliveries: typing.Sequence[Delivery],
        max_deliveries: int,
        reason: str,
        error: str = "",
    ) -> ReclaimResult:
        """Count the delivery of held items whose run ended their worker; requeue them at
        the head, or dead-letter them past the bound (``charge.lua``)."""
        counts: list[tuple[int, int]] = []

        def charge(s: Scripts, k: keys.QueueKeys, pairs: list[str]) -> int:
            counts.append(s.charge(k, pairs, max_deliveries, reason, error))
            return 0

        self._settle(queue, deliveries, charge)
        return ReclaimResult(sum(c[0] for c in counts), sum(c[1] for c in counts))

    def extend_owned(self, queue: str, owner: str, lease_seconds: float) -> int:
        """Extend every batch ``owner`` holds, on every node (``extend_owned.lua``)."""
        k = keys.queue_keys(queue)
        return self._sum(lambda node: node.scripts.extend_owned(k, owner, lease_seconds))

    def release_owned(self, queue: str, owner: str) -> int:
        """Release every item ``owner`` holds, on every node (``release_owned.lua``)."""
        k = keys.queue_keys(queue)
        return self._sum(lambda node: node.scripts.release_owned(k, owner))

    def reclaim_expired(self, queue: str, max_deliveries: int) -> ReclaimResult:
        """Requeue or dead-letter expired leases, in bounded script calls."""
        k = keys.queue_keys(queue)
        counts = [spread.reclaim_on(node, k, max_deliveries) for node in self._all()]
        return ReclaimResult(sum(c[0] for c in counts), sum(c[1] for c in counts))

    def leased_count(self, queue: str) -> int:
        """Number of leased items, expired but unreclaimed ones included."""
        counter = keys.queue_keys(queue).leased_count
        return self._sum(lambda node: int(node.client.get(counter) or 0))

    # -- dead letters -----------------------------------------------------------

    def dead_letter_many(
        self,
        queue: str,
        deliveries: typing.Sequence[Delivery],
        reason: str,
        error: str = "",
    ) -> int:
        """Move held leased items to the dead letters; returns how many."""
        return self._settle(
            queue,
            deliveries,
            lambda s, k, pairs: s.dead_letter(k, pairs, reason, error),
        )

    def dead_letters(self, queue: str, limit: int = 100) -> list[DeadLetter]:
        """Up to ``limit`` dead items, oldest first, without removing them."""
        if limit <= 0:
            return []
        k = keys.queue_keys(queue)
        nodes = self._all()
        found = [dead for node in nodes for dead in spread.dead_letters_of(node, k, limit)]
        if len(nodes) > 1:
            found.sort(key=lambda dead: dead.dead_at)
        return found[:limit]

    def requeue_dead(self, queue: str, limit: int = 0) -> int:
        """Move up to ``limit`` (0 = all) dead items to the tail of NORMAL, each on its node."""
        k = keys.queue_keys(queue)
        total = 0
        for node in self._rotated():
            if limit and total >= limit:
                break
            with node:
                total += node.scripts.requeue_dead(k, limit - total if limit else 0)
        return total

    def purge_dead(self, queue: str) -> int:
        """Delete every dead item of a queue; returns how many."""
        k = keys.queue_keys(queue)
        return self._sum(lambda node: node.scripts.purge_dead(k))

    def dead_count(self, queue: str) -> int:
        """Number of dead items of a queue."""
        dead = keys.queue_keys(queue).dead
        return self._sum(lambda node: int(node.client.llen(dead)))

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

    # -- lifecycle --------------------------------------------------------------

    def ping(self) -> None:
        """PING every node; raise ``BrokerUnavailable`` naming the first that fails."""
        for node in self._all():
            with node:
                node.client.ping()

    def close(self) -> None:
        """Close every node's connections; later use raises ``ConnectorError``."""
        with self._connect_lock:
            self._closed = True
            if self._pid == os.getpid():
                for node in self._nodes:
                    node.close()
            self._nodes = []
            self._pid = -1
