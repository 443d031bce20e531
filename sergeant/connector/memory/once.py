"""The memory connector's once pushes (see ``sergeant.connector._once_contract``): the
mark and the push are made under the store's lock."""

from __future__ import annotations

import time
import uuid

from sergeant.connector import _once_contract
from sergeant.connector.base import Priority
from sergeant.connector.memory.access import StoreAccess
from sergeant.connector.memory.store import Item, Store

__all__ = ["Once"]

#: Most expired marks one push deletes besides its own.
SWEEP_BATCH = 16


class Once(StoreAccess):
    """``push_once`` of ``sergeant.connector.memory.Connector``."""

    def push_once(
        self,
        queue: str,
        item: bytes,
        once_key: str,
        keep_seconds: float,
        priority: Priority = "NORMAL",
    ) -> bool:
        """See :meth:`sergeant.connector.Connector.push_once`."""
        _once_contract.check(keep_seconds, priority)

        def push(data: Store) -> bool:
            now = time.time()
            _sweep(data, now)
            if data.once.get((queue, once_key), 0.0) > now:
                return False
            data.once[(queue, once_key)] = now + keep_seconds
            stored = Item(uuid.uuid4().hex, bytes(item), priority == "HIGH")
            data.queue(queue).lane(stored).append(stored)
            data.cond.notify_all()
            return True

        return self._locked(push)


def _sweep(data: Store, now: float) -> None:
    expired = []
    for key, until in data.once.items():
        if until <= now:
            expired.append(key)
            if len(expired) >= SWEEP_BATCH:
                break
    for key in expired:
        del data.once[key]
