"""The memory connector's start permits (see ``_permits_contract``): the log of each
key in the store, granted under the store's lock, on this process's clock."""

from __future__ import annotations

import time

from sergeant.connector import _permits
from sergeant.connector.memory.access import StoreAccess
from sergeant.connector.memory.store import Store

__all__ = ["Permits"]


class Permits(StoreAccess):
    """``take_starts`` under the store's lock."""

    def take_starts(
        self, key: str, tasks: int, window_seconds: float, want: int
    ) -> tuple[int, float]:
        """See :meth:`sergeant.connector.Connector.take_starts`."""
        _permits.check(tasks, window_seconds, want)

        def take(data: Store) -> tuple[int, float]:
            log = data.starts.get(key, [])
            found = _permits.grant(log, time.time(), tasks, window_seconds, want)
            if found.log:
                data.starts[key] = found.log
            else:
                data.starts.pop(key, None)
            return found.granted, found.retry_seconds

        return self._locked(take)
