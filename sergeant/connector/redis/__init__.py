"""The Redis connector: queues, leases and locks on one or more independent Redis servers.

Every operation on a queue is one Lua script (``lua/*.lua``) touching only that
queue's keys (see :mod:`sergeant.connector.redis.keys`), so it is atomic and works
under Redis Cluster's one-slot rule. With several independent nodes, each queue
lives on one node chosen by CRC32 of its name (as 0.27 sharded keys), which keeps
the ordering promises of the contract; many queues spread over the nodes. Leases,
counts and dead letters still look at every node, so items are never stranded if
the node list changes.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
import typing

from sergeant.connector import _connector
from sergeant.connector._connector import DeadLetter, Delivery, Priority, ReclaimResult
from sergeant.connector.redis import keys
from sergeant.connector.redis.lock import Lock
from sergeant.connector.redis.nodes import Node, NodeConfig, parse_nodes
from sergeant.connector.redis.scripts import Scripts
from sergeant.errors import ConfigError, ConnectorError

__all__ = ["Connector", "Lock"]

#: Most payloads per push script call; a bigger push runs several in one MULTI/EXEC.
PUSH_CHUNK = 2000
#: Longest single BLPOP of a blocking lease (seconds); below the socket timeout.
BLOCK_SLICE_SECONDS = 2.0
#: Shortest BLPOP timeout (seconds): Redis reads a timeout that rounds to 0 ms as "forever".
MIN_BLOCK_SECONDS = 0.01
#: Longest BLPOP of ``wait_for_items`` while delayed items are pending (seconds).
DELAYED_POLL_SECONDS = 0.05

_PRIORITIES = ("NORMAL", "HIGH")

_Settle = typing.Callable[[Scripts, keys.QueueKeys, list[str]], int]


class Connector(_connector.Connector):
    """Queues on Redis servers, given in the Sergeant 0.27 ``nodes`` form.

    Connections open on first use and again in a forked child.

    Args:
        nodes: one dict per independent server with the keys ``host``, ``port``,
            ``password``, ``database`` and optionally ``username``.

    Raises:
        ConfigError: ``nodes`` is empty or an entry has an unknown or missing key.
    """

    name = "redis"
    supports_blocking = True

    def __init__(self, nodes: list[dict[str, typing.Any]]) -> None:
        self._configs: list[NodeConfig] = parse_nodes(nodes)
        self._nodes: list[Node] = []
        self._pid = -1
        self._closed = False
        self._connect_lock = threading.Lock()

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
                self._nodes = [Node(config, i) for i, config in enumerate(self._configs)]
                self._pid = os.getpid()

    def _home_first(self, queue: str) -> list[Node]:
        nodes = self._all()
        if len(nodes) == 1:
            return nodes
        home = keys.node_index(queue, len(nodes))
        return nodes[home:] + nodes[:home]

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
        """Append payloads to a queue, atomically (one script, or one MULTI/EXEC).

        Never retried inside (a retried push could land twice): it returns, or raises
        ``BrokerUnavailable`` (no connection within the 2 s connect timeout) or
        ``ConnectionLost`` (no reply within the 5 s socket timeout), so a push ends
        within about 7 s (see ``nodes.DEFAULT_SOCKET_*``). After ``ConnectionLost``
        the push may or may not have been stored.
        """
        if priority not in _PRIORITIES:
            raise ConfigError(f"priority is {priority!r}; use 'NORMAL' or 'HIGH'")
        count = len(payloads)
        if count == 0:
            return 0
        node = self._home_first(queue)[0]
        k = keys.queue_keys(queue)
        high = priority == "HIGH"
        with node:
            if count <= PUSH_CHUNK:
                return node.scripts.push(k, high, consumable_from, payloads)
            pipe = node.client.pipeline(transaction=True)
            for start in range(0, count, PUSH_CHUNK):
                chunk = payloads[start : start + PUSH_CHUNK]
                node.scripts.push(k, high, consumable_from, chunk, pipe)
            pipe.execute()
        return count

    def pop_many(self, queue: str, count: int) -> list[bytes]:
        """Remove and return up to ``count`` ready items; see the contract."""
        if count <= 0:
            return []
        k = keys.queue_keys(queue)
        popped: list[bytes] = []
        for node in self._home_first(queue):
            with node:
                popped += node.scripts.pop(k, count - len(popped))
            if len(popped) >= count:
                break
        return popped

    def wait_for_items(self, queue: str, block_seconds: float) -> bool:
        """Wait (BLPOP on the queue's wake list) until an item is ready; see the contract.

        Each BLPOP lasts at most :data:`BLOCK_SLICE_SECONDS`, and much less while
        delayed items are pending, since no push wakes the wait when they fall due.
        """
        k = keys.queue_keys(queue)
        home = self._home_first(queue)[0]
        deadline = time.monotonic() + block_seconds
        while True:
            ready = self.length(queue)
            if ready > 0:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            timeout = min(remaining, BLOCK_SLICE_SECONDS)
            if self.length(queue, include_delayed=True) > ready:
                timeout = min(timeout, DELAYED_POLL_SECONDS)
            with home:
                home.client.blpop([k.wake], timeout=max(timeout, MIN_BLOCK_SECONDS))

    def length(self, queue: str, include_delayed: bool = False) -> int:
        """Ready items (due delayed ones included), plus not-yet-due ones when asked."""
        k = keys.queue_keys(queue)
        total = 0
        for node in self._all():
            with node:
                total += node.scripts.length(k, include_delayed)
        return total

    def purge(self, queue: str) -> int:
        """Delete every ready and delayed item of a queue; returns how many."""
        k = keys.queue_keys(queue)
        total = 0
        for node in self._all():
            with node:
                total += node.scripts.purge(k)
        return total

    # -- leases -----------------------------------------------------------------

    def lease_many(
        self,
        queue: str,
        count: int,
        owner: str,
        lease_seconds: float,
        block_seconds: float = 0.0,
    ) -> list[Delivery]:
        """Lease up to ``count`` ready items; wait server-side (BLPOP) when asked.

        An idle blocking lease waits on the queue's wake list, which every push,
        release and reclaim feeds, and never past the earliest delayed item's eta.
        ``owner`` is not stored per item, to spare the hot path a hash write (and
        delete) per leased item.
        """
        if count <= 0:
            return []
        k = keys.queue_keys(queue)
        nodes = self._home_first(queue)
        leased, wait_ms = self._lease_round(nodes, k, count, lease_seconds)
        if leased or block_seconds <= 0:
            return leased
        deadline = time.monotonic() + block_seconds
        home = nodes[0]
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            timeout = min(remaining, BLOCK_SLICE_SECONDS)
            if wait_ms >= 0:
                timeout = min(timeout, wait_ms / 1000)
            with home:
                home.client.blpop([k.wake], timeout=max(timeout, MIN_BLOCK_SECONDS))
            leased, wait_ms = self._lease_round(nodes, k, count, lease_seconds)
            if leased:
                return leased

    @staticmethod
    def _lease_round(
        nodes: list[Node], k: keys.QueueKeys, count: int, lease_seconds: float
    ) -> tuple[list[Delivery], int]:
        """One non-blocking lease over the nodes, home first: (deliveries, wait_ms)."""
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

    def _settle(self, queue: str, deliveries: typing.Sequence[Delivery], call: _Settle) -> int:
        """Run ``call`` once per node holding some of ``deliveries``; sum its counts."""
        if not deliveries:
            return 0
        nodes = self._all()
        k = keys.queue_keys(queue)
        groups: dict[int, typing.Sequence[Delivery]]
        if len(nodes) == 1:
            groups = {0: deliveries}
        else:
            by_node: dict[int, list[Delivery]] = {}
            for delivery in deliveries:
                by_node.setdefault(delivery.node, []).append(delivery)
            groups = dict(by_node)
        total = 0
        for index, group in groups.items():
            if not 0 <= index < len(nodes):
                continue  # a node no longer configured: its leases cannot be held
            node = nodes[index]
            with node:
                # A lease is named by its member in the leased zset (see keys).
                members = [f"{d.item_id}:{d.deliveries}:{d.token}" for d in group]
                total += call(node.scripts, k, members)
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
            queue, deliveries, lambda s, k, members: s.extend(k, members, lease_seconds)
        )

    def reclaim_expired(self, queue: str, max_deliveries: int) -> ReclaimResult:
        """Requeue or dead-letter expired leases, in bounded script calls."""
        k = keys.queue_keys(queue)
        requeued = dead = 0
        for node in self._all():
            more = True
            while more:
                with node:
                    again, died, more = node.scripts.reclaim(k, max_deliveries)
                requeued += again
                dead += died
        return ReclaimResult(requeued=requeued, dead_lettered=dead)

    def leased_count(self, queue: str) -> int:
        """Number of leased items, expired but unreclaimed ones included."""
        leased = keys.queue_keys(queue).leased
        total = 0
        for node in self._all():
            with node:
                # '-inf (+inf' leaves out the permanent '-' member (see keys).
                total += int(node.client.zcount(leased, "-inf", "(+inf"))
        return total

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
            lambda s, k, members: s.dead_letter(k, members, reason, error),
        )

    def dead_letters(self, queue: str, limit: int = 100) -> list[DeadLetter]:
        """Up to ``limit`` dead items, oldest first, without removing them."""
        if limit <= 0:
            return []
        k = keys.queue_keys(queue)
        found: list[DeadLetter] = []
        for node in self._all():
            with node:
                r = node.scripts.dead_letters(k, limit)
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
        if len(self._configs) > 1:
            found.sort(key=lambda dead: dead.dead_at)
        return found[:limit]

    def requeue_dead(self, queue: str, limit: int = 0) -> int:
        """Move up to ``limit`` (0 = all) dead items to the tail of NORMAL, home node first."""
        k = keys.queue_keys(queue)
        total = 0
        for node in self._home_first(queue):
            if limit and total >= limit:
                break
            with node:
                total += node.scripts.requeue_dead(k, limit - total if limit else 0)
        return total

    def purge_dead(self, queue: str) -> int:
        """Delete every dead item of a queue; returns how many."""
        k = keys.queue_keys(queue)
        total = 0
        for node in self._all():
            with node:
                total += node.scripts.purge_dead(k)
        return total

    def dead_count(self, queue: str) -> int:
        """Number of dead items of a queue."""
        dead = keys.queue_keys(queue).dead
        total = 0
        for node in self._all():
            with node:
                total += int(node.client.llen(dead))
        return total

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

    def key_delete(self, key: str) -> bool:
        """Delete ``key``; True if it existed."""
        node = self._node_for(key)
        with node:
            return bool(node.client.delete(keys.key(key)))

    def lock(self, name: str) -> Lock:
        """A lock object for ``name`` (not yet acquired)."""
        return Lock(name, self._node_for)

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
