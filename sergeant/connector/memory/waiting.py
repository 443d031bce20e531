"""The memory connector's waiting items, listed and removed (see ``_waiting_contract``)."""

from __future__ import annotations

import heapq
from collections.abc import Sequence

from sergeant.connector.base import Waiting
from sergeant.connector.memory.access import StoreAccess
from sergeant.connector.memory.store import Store

__all__ = ["WaitingItems"]


class WaitingItems(StoreAccess):
    """``waiting`` and ``remove_waiting`` under the store's lock."""

    def waiting(self, queue: str, limit: int = 100_000) -> list[Waiting]:
        """See :meth:`sergeant.connector.Connector.waiting`."""

        def read(data: Store) -> list[Waiting]:
            target = data.queue(queue)
            delayed = [entry[2] for entry in sorted(target.delayed)]
            high = [item for item in delayed if item.high]
            normal = [item for item in delayed if not item.high]
            found = [*target.high, *high, *target.normal, *normal][:limit]
            return [Waiting(item.item_id.encode(), item.payload) for item in found]

        return self._locked(read)

    def remove_waiting(self, queue: str, items: Sequence[Waiting]) -> int:
        """See :meth:`sergeant.connector.Connector.remove_waiting`."""
        wanted = {item.ref.decode() for item in items}

        def remove(data: Store) -> int:
            target = data.queue(queue)
            removed = []
            for lane in (target.high, target.normal):
                kept = [item for item in lane if item.item_id not in wanted]
                removed += [item for item in lane if item.item_id in wanted]
                lane.clear()
                lane.extend(kept)
            still = [entry for entry in target.delayed if entry[2].item_id not in wanted]
            removed += [entry[2] for entry in target.delayed if entry[2].item_id in wanted]
            target.delayed[:] = still
            heapq.heapify(target.delayed)
            target.free(removed)
            return len(removed)

        return self._locked(remove)
