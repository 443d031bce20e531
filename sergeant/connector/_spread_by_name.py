"""What a spread connector keeps on one member, chosen by name: keys and locks by
CRC32 of the name, as 0.27 did with several nodes, and the worker registry on the
first member."""

from __future__ import annotations

import zlib

from sergeant.connector import base
from sergeant.connector.base import Lock, Priority

__all__ = ["ByName", "member_index"]


def member_index(name: str, member_count: int) -> int:
    """The member (of ``member_count``) holding key or lock ``name``: CRC32, as 0.27."""
    if member_count == 1:
        return 0
    return zlib.crc32(name.encode()) % member_count


class ByName:
    """Keys, locks and the worker registry of a spread connector (see ``Spread``)."""

    _members: list[base.Connector]

    def _member_for(self, name: str) -> base.Connector:
        return self._members[member_index(name, len(self._members))]

    # -- keys and locks (one member each, by CRC32 of the name) ------------------

    def key_set(self, key: str, value: bytes, ttl_seconds: float | None = None) -> None:
        """Store ``value`` under ``key`` on the member holding it."""
        self._member_for(key).key_set(key, value, ttl_seconds)

    def key_get(self, key: str) -> bytes | None:
        """The value under ``key`` on the member holding it, or None."""
        return self._member_for(key).key_get(key)

    def key_delete(self, key: str) -> bool:
        """Delete ``key`` on the member holding it; True if it existed."""
        return self._member_for(key).key_delete(key)

    def key_set_notify(self, key: str, value: bytes, ttl_seconds: float) -> None:
        """Store ``value`` and wake waiters, on the member holding ``key``."""
        self._member_for(key).key_set_notify(key, value, ttl_seconds)

    def wait_for_key(self, key: str, timeout_seconds: float | None) -> bytes | None:
        """The value under ``key``, waited for on the member holding it."""
        return self._member_for(key).wait_for_key(key, timeout_seconds)

    def lock(self, name: str) -> Lock:
        """A lock object for ``name`` on the member holding it (not yet acquired)."""
        return self._member_for(name).lock(name)

    # -- live workers (kept on the first member) ----------------------------------

    def register_worker(self, worker_id: str, info: bytes, ttl_seconds: float) -> None:
        """Publish or refresh a worker's heartbeat on the first member."""
        self._members[0].register_worker(worker_id, info, ttl_seconds)

    def unregister_worker(self, worker_id: str) -> bool:
        """Remove a worker's heartbeat from the first member."""
        return self._members[0].unregister_worker(worker_id)

    def workers(self) -> list[bytes]:
        """The info of every live worker, from the first member."""
        return self._members[0].workers()

    # -- held workflow steps (one member each, by CRC32 of the flow and node) -----

    def _flow_member(self, flow_id: str, node: int) -> base.Connector:
        return self._member_for(f"{flow_id}:{node}")

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
        """Hold the step on the member its flow and node hash to."""
        member = self._flow_member(flow_id, node)
        member.hold(queue, flow_id, node, payload, needed, priority, ttl_seconds)

    def advance(
        self,
        queue: str,
        flow_id: str,
        node: int,
        member: int,
        value: bytes,
        ttl_seconds: float = 86400.0,
    ) -> bool:
        """Advance the step on the member holding it."""
        holder = self._flow_member(flow_id, node)
        return holder.advance(queue, flow_id, node, member, value, ttl_seconds)

    def flow_values(self, queue: str, flow_id: str, node: int) -> dict[int, bytes]:
        """The step's values, from the member holding it."""
        return self._flow_member(flow_id, node).flow_values(queue, flow_id, node)

    def flow_released(self, queue: str, flow_id: str, node: int) -> bool:
        """Whether the step was released, on the member holding it."""
        return self._flow_member(flow_id, node).flow_released(queue, flow_id, node)
