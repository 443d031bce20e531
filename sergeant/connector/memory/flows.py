"""The memory connector's held workflow steps (see ``sergeant.connector._flow_contract``)."""

from __future__ import annotations

import dataclasses
import time
import uuid

from sergeant.connector.base import Priority
from sergeant.connector.memory.access import StoreAccess
from sergeant.connector.memory.store import Item, Store

__all__ = ["Flows"]


@dataclasses.dataclass(slots=True)
class FlowNode:
    """One held step: its item (until pushed), the members it needs and their values."""

    payload: bytes = b""
    high: bool = False
    needed: int = 0  # 0: not held yet (members recorded first)
    released: bool = False
    values: dict[int, bytes] = dataclasses.field(default_factory=dict)
    expires_at: float = 0.0


class Flows(StoreAccess):
    """Hold, advance and read workflow nodes, each under the store's lock."""

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
        """See :meth:`sergeant.connector.Connector.hold`."""

        def hold(data: Store) -> None:
            found = _node(data, queue, flow_id, node, ttl_seconds, create=True)
            assert found is not None
            if found.needed:
                return  # held already
            found.payload, found.high, found.needed = bytes(payload), priority == "HIGH", needed
            _release_if_complete(data, queue, found)

        self._locked(hold)

    def advance(
        self,
        queue: str,
        flow_id: str,
        node: int,
        member: int,
        value: bytes,
        ttl_seconds: float = 86400.0,
    ) -> bool:
        """See :meth:`sergeant.connector.Connector.advance`."""

        def advance(data: Store) -> bool:
            found = _node(data, queue, flow_id, node, ttl_seconds, create=True)
            assert found is not None
            found.values.setdefault(member, bytes(value))
            _release_if_complete(data, queue, found)
            return found.released

        return self._locked(advance)

    def flow_values(self, queue: str, flow_id: str, node: int) -> dict[int, bytes]:
        """See :meth:`sergeant.connector.Connector.flow_values`."""

        def values(data: Store) -> dict[int, bytes]:
            found = _node(data, queue, flow_id, node, 0.0, create=False)
            return dict(found.values) if found is not None else {}

        return self._locked(values)

    def flow_released(self, queue: str, flow_id: str, node: int) -> bool:
        """See :meth:`sergeant.connector.Connector.flow_released`."""

        def released(data: Store) -> bool:
            found = _node(data, queue, flow_id, node, 0.0, create=False)
            return found is not None and found.released

        return self._locked(released)


def _node(
    data: Store, queue: str, flow_id: str, node: int, ttl_seconds: float, create: bool
) -> FlowNode | None:
    """The live node (expired ones are dropped); with ``create``, made if missing and
    its expiry moved to ``ttl_seconds`` from now."""
    flows = data.queue(queue).flows
    now = time.time()
    found = flows.get((flow_id, node))
    if found is not None and found.expires_at <= now:
        del flows[(flow_id, node)]
        found = None
    if not create:
        return found
    if found is None:
        found = flows[(flow_id, node)] = FlowNode()
    found.expires_at = now + ttl_seconds
    return found


def _release_if_complete(data: Store, queue: str, found: FlowNode) -> None:
    if found.released or not found.needed or len(found.values) < found.needed:
        return
    found.released = True
    if found.payload:
        target = data.queue(queue)
        item = Item(uuid.uuid4().hex, found.payload, found.high)
        target.lane(item).append(item)
        data.cond.notify_all()
    found.payload = b""
