"""The Redis connector's nodes: settings, per-process connections and visiting order.

``NodeSet`` is the base the connector's parts build on: it turns the parameters
into :class:`~sergeant.connector.redis.settings.RedisSettings`, connects (again in
a forked child), rotates where each call starts, and waits on a queue's wake list.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import typing

from sergeant.connector import base as _connector
from sergeant.connector.redis import entries, keys, shard_record, spread
from sergeant.connector.redis.nodes import Node
from sergeant.connector.redis.settings import RedisSettings, parse_params
from sergeant.errors import ConnectorError
from sergeant.logging import refusals

__all__ = [
    "BLOCK_SLICE_SECONDS",
    "DELAYED_POLL_SECONDS",
    "MIN_BLOCK_SECONDS",
    "MULTI_NODE_BLOCK_SLICE_SECONDS",
    "NodeSet",
]

#: Longest single BLPOP of a blocking lease (seconds); below the socket timeout.
BLOCK_SLICE_SECONDS = 2.0
#: Longest single BLPOP with several independent nodes (seconds): a push may land on
#: another node than the one waited on, so the wait moves on to the next node soon.
MULTI_NODE_BLOCK_SLICE_SECONDS = 0.05
#: Shortest BLPOP timeout (seconds): Redis reads a timeout that rounds to 0 ms as "forever".
MIN_BLOCK_SECONDS = 0.01
#: Longest BLPOP of ``wait_for_items`` while delayed items are pending (seconds).
DELAYED_POLL_SECONDS = 0.05

# The connector's own name, whichever of its modules logs.
logger = logging.getLogger("sergeant.connector.redis")


class NodeSet(_connector.Connector):
    """The configured Redis nodes of one connector, connected lazily per process."""

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
        shards: int = 1,
    ) -> None:
        tls = {"ssl": ssl, "ssl_ca_certs": ssl_ca_certs, "ssl_certfile": ssl_certfile}
        tls["ssl_keyfile"] = ssl_keyfile
        self._settings: RedisSettings = parse_params(nodes, url, urls, cluster, tls, shards)
        #: False with several independent nodes or shards: order holds per node only.
        single = self._settings.cluster or len(self._settings.nodes) == 1
        self.ordered = single and self._settings.shards == 1
        # A pull sent ahead is in flight on a lane (a cluster's: one per primary).
        self.overlaps_pulls = True
        # A worker's pull (ack_and_lease) is one batch of one node: a slot names a task.
        self.names_running_by: typing.Literal["slot", "token"] | None = "slot"
        self._nodes: list[Node] = []
        self._rotation = spread.Rotation()
        self._pulls = itertools.count()  # a worker's pulls, for spread.FOLD_PULLS
        self._ids = entries.IdMaker()
        self._pid = -1
        self._closed = False
        self._connect_lock = threading.Lock()
        addresses = ",".join(node.address for node in self._settings.nodes)
        self._refusals = refusals.Refusals(logger, f"Redis at {addresses}")
        #: Per queue (its ``QueueKeys.leases``), the encoded group limits every node's
        #: leases send (one dict shared with the nodes, also after a fork).
        self._group_limits: dict[str, str] = {}
        #: Queues whose shard count this process has recorded (see ``shard_record``).
        self._counts_recorded: set[str] = set()
        #: Per queue, the items last found in shards beyond this connector's count.
        self._unread_shards: dict[str, int] = {}

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
                for node in self._nodes:
                    node.group_limits = self._group_limits
                self._pid = os.getpid()

    def _record_shards(self, queue: str) -> None:
        """On a sharded cluster, once per queue per process: record the shard count
        (``shard_record``), so a worker with fewer shards finds what it does not read."""
        if self._settings.shards > 1 and queue not in self._counts_recorded:
            shard_record.record_count(self._all()[0], queue, self._settings.shards)
            self._counts_recorded.add(queue)

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

    @staticmethod
    def _wait_on_wake(node: Node, queue: str, timeout: float) -> None:
        with node:
            wake = node.queue_keys(queue).wake
            node.client.blpop([wake], timeout=max(timeout, MIN_BLOCK_SECONDS))

    def _block_slice(self, remaining: float) -> float:
        longest = BLOCK_SLICE_SECONDS if self.ordered else MULTI_NODE_BLOCK_SLICE_SECONDS
        return min(remaining, longest)

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
