"""The Redis connector's held workflow steps (see ``sergeant.connector._flow_contract``).

Each node is one hash beside its queue's keys (``keys.flow_node``, same hash tag,
so a cluster runs its scripts on the queue's slot). ``flow_hold.lua`` and
``flow_advance.lua`` each do their whole step in one script: recording a member
and pushing the held entry cannot be separated by a crash or another client. The
entry (header and payload) is made here at hold time, as ``push_many`` makes it,
so the released item is an ordinary ready item with an id from this client.

On several independent servers a node lives on the server that CRC32 of
``"<flow_id>:<node>"`` picks (as keys and locks are placed), and its item is
pushed on that server's lists, which every consumer visits. On a sharded cluster
the same hash picks the shard, and the node's hash takes that shard's tag.
"""

from __future__ import annotations

import math

from sergeant.connector.base import Priority
from sergeant.connector.redis import entries, keys
from sergeant.connector.redis._nodeset import NodeSet
from sergeant.connector.redis.nodes import Node
from sergeant.errors import ConfigError

__all__ = ["Flows"]


def _ttl_ms(ttl_seconds: float) -> int:
    return max(1, math.ceil(ttl_seconds * 1000))


def _raw(reply: bytes | str) -> bytes:
    return reply.encode() if isinstance(reply, str) else reply


class Flows(NodeSet):
    """Hold, advance and read workflow nodes, each on the server it hashes to."""

    def _flow_node(self, flow_id: str, node: int) -> Node:
        return self._node_for(f"{flow_id}:{node}")

    def hold(
        self,
        queue: str,
        flow_id: str,
        node: int,
        payload: bytes,
        needed: int,
        priority: Priority = "NORMAL",
        ttl_seconds: float = 86400.0,
    ) -> None:
        """See :meth:`sergeant.connector.Connector.hold` (one ``flow_hold.lua`` call)."""
        if priority not in ("NORMAL", "HIGH"):
            raise ConfigError(f"priority is {priority!r}; use 'NORMAL' or 'HIGH'")
        if needed < 1:
            raise ConfigError(f"needed is {needed!r}; a held step needs at least 1 member")
        entry = b""
        if payload:
            entry = entries.make_entries(self._ids, priority[0].encode(), [payload])[0]
        target = self._flow_node(flow_id, node)
        name = keys.flow_node(target.tag(queue), flow_id, node)
        with target:
            target.scripts.flow_hold(
                target.queue_keys(queue), name, needed, _ttl_ms(ttl_seconds), entry
            )

    def advance(
        self,
        queue: str,
        flow_id: str,
        node: int,
        member: int,
        value: bytes,
        ttl_seconds: float = 86400.0,
    ) -> bool:
        """See :meth:`sergeant.connector.Connector.advance` (one ``flow_advance.lua`` call)."""
        target = self._flow_node(flow_id, node)
        name = keys.flow_node(target.tag(queue), flow_id, node)
        k = target.queue_keys(queue)
        with target:
            return target.scripts.flow_advance(k, name, member, value, _ttl_ms(ttl_seconds))

    def flow_values(self, queue: str, flow_id: str, node: int) -> dict[int, bytes]:
        """See :meth:`sergeant.connector.Connector.flow_values` (one HGETALL)."""
        target = self._flow_node(flow_id, node)
        with target:
            fields = target.client.hgetall(keys.flow_node(target.tag(queue), flow_id, node))
        # redis-py types replies as ``bytes | str``; this client never decodes them.
        found = {_raw(f): _raw(v) for f, v in fields.items()}
        return {int(f[2:]): v for f, v in found.items() if f.startswith(b"v:")}

    def flow_released(self, queue: str, flow_id: str, node: int) -> bool:
        """See :meth:`sergeant.connector.Connector.flow_released` (one HGET)."""
        target = self._flow_node(flow_id, node)
        with target:
            released = target.client.hget(keys.flow_node(target.tag(queue), flow_id, node), "r")
        return released in (b"1", "1")
