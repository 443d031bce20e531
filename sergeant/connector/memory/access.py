"""What every part of the memory connector shares: its store, and running a step
under the store's lock (after checking the store belongs to this process)."""

from __future__ import annotations

import typing
from collections.abc import Callable

from sergeant.connector.memory.store import Store, store

__all__ = ["StoreAccess"]

T = typing.TypeVar("T")


class StoreAccess:
    """The store of one name, and :meth:`_locked`, which runs a step on it atomically.

    Args:
        name: which in-process store to use; connectors with the same name share it.
    """

    def __init__(self, name: str = "default") -> None:
        self.store_name = name
        self._store: Store = store(name)

    def _locked(self, step: Callable[[Store], T]) -> T:
        data = self._store
        data.check_process()
        with data.cond:
            return step(data)
