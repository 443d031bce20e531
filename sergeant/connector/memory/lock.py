"""Named locks of the in-process broker (see ``sergeant.connector.memory``)."""

from __future__ import annotations

import math
import time
import typing
import uuid
from collections.abc import Callable

from sergeant.connector import base
from sergeant.connector.memory.store import Store

__all__ = ["Lock"]

T = typing.TypeVar("T")


class Lock(base.Lock):
    """A named lock in the in-process store; see :class:`sergeant.connector.Lock`.

    Args:
        store: the store that holds the lock.
        name: the lock's name.
    """

    def __init__(self, store: Store, name: str) -> None:
        super().__init__(name)
        self._store = store

    def _locked(self, step: Callable[[Store], T]) -> T:
        data = self._store
        data.check_process()
        with data.cond:
            return step(data)

    def _try_acquire(self, ttl: int) -> bool:
        def take(data: Store) -> bool:
            held = data.locks.get(self.name)
            now = time.time()
            if held is not None and held[1] > now:
                return False
            self.token = uuid.uuid4().hex
            data.locks[self.name] = (self.token, now + ttl)
            return True

        return self._locked(take)

    def _mine(self, data: Store) -> bool:
        held = data.locks.get(self.name)
        return held is not None and held[0] == self.token and held[1] > time.time()

    def release(self) -> bool:
        """See :meth:`sergeant.connector.Lock.release`."""

        def free(data: Store) -> bool:
            mine = self.token is not None and self._mine(data)
            if mine:
                del data.locks[self.name]
            self.token = None
            return mine

        return self._locked(free)

    def is_locked(self) -> bool:
        """See :meth:`sergeant.connector.Lock.is_locked`."""
        return self.get_ttl() is not None

    def set_ttl(self, ttl: int) -> bool:
        """See :meth:`sergeant.connector.Lock.set_ttl`."""

        def change(data: Store) -> bool:
            if self.token is None or not self._mine(data):
                return False
            if ttl <= 0:
                del data.locks[self.name]
            else:
                data.locks[self.name] = (self.token, time.time() + ttl)
            return True

        return self._locked(change)

    def get_ttl(self) -> int | None:
        """See :meth:`sergeant.connector.Lock.get_ttl`."""

        def read(data: Store) -> int | None:
            held = data.locks.get(self.name)
            now = time.time()
            return math.ceil(held[1] - now) if held is not None and held[1] > now else None

        return self._locked(read)
