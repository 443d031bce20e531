"""Held items: the steps of a workflow that wait for the steps before them.

A *node* is named by ``(queue, flow_id, node)``. :meth:`FlowContract.hold` keeps
one item back in it until ``needed`` distinct members have succeeded;
:meth:`FlowContract.advance` records one member's success and its value. The
advance that records the last needed member pushes the held item, in the same
atomic step (one Lua script, one SQLite transaction, one single-document update on
MongoDB), so the item after a group is pushed exactly once however often its
members run or are recorded. The values stay readable (:meth:`FlowContract.flow_values`)
until the node expires, ``ttl_seconds`` after its last hold or advance.

On several independent nodes (Redis ``nodes``, MongoDB ``nodes``) a node lives on
the node its ``(flow_id, node)`` hashes to, and its item is pushed there.
"""

from __future__ import annotations

from sergeant.connector._queue_contract import Priority

__all__ = ["FlowContract"]


class FlowContract:
    """Held items and the members that release them; see the module docstring."""

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
        """Keep ``payload`` back until ``needed`` (at least 1) members of the node succeed.

        The item is then pushed as :meth:`push_many` pushes a ready item (at the tail
        of ``priority``, waking a blocked lease), exactly once. If the node already
        has ``needed`` members (they were recorded first) it is pushed now. An empty
        ``payload`` holds nothing to push: the node only counts its members. Holding
        a node again changes nothing.
        """
        raise NotImplementedError(f"{type(self).__name__} does not hold workflow steps")

    def advance(
        self,
        queue: str,
        flow_id: str,
        node: int,
        member: int,
        value: bytes,
        ttl_seconds: float = 86400.0,
    ) -> bool:
        """Record that ``member`` of the node succeeded with ``value``.

        A member recorded again counts once and keeps its first value. When this
        records the last needed member, the held item is pushed in the same atomic
        step. A node not held yet records the member all the same (its hold then
        counts it).

        Returns:
            True when the node is held and has all its members (now or before).
        """
        raise NotImplementedError(f"{type(self).__name__} does not hold workflow steps")

    def flow_values(self, queue: str, flow_id: str, node: int) -> dict[int, bytes]:
        """The recorded values of the node's members, by member (empty once expired)."""
        raise NotImplementedError(f"{type(self).__name__} does not hold workflow steps")

    def flow_released(self, queue: str, flow_id: str, node: int) -> bool:
        """Whether the node is held and has all its members (its item was pushed)."""
        raise NotImplementedError(f"{type(self).__name__} does not hold workflow steps")
