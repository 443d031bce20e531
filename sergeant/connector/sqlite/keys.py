"""Keys and named locks of the SQLite broker, in the ``keys`` and ``locks`` tables.

Expired rows are invisible to reads; setting a key sweeps the expired ones.
"""

from __future__ import annotations

import math
import time
import uuid

from sergeant.connector import base
from sergeant.connector.sqlite import sql
from sergeant.connector.sqlite.session import Session

__all__ = ["Keys", "Lock"]


class Keys(Session):
    """The key and lock operations of ``sergeant.connector.sqlite.Connector``."""

    def key_set(self, key: str, value: bytes, ttl_seconds: float | None = None) -> None:
        """See :meth:`sergeant.connector.Connector.key_set`."""
        with self._transaction() as conn:
            now = time.time()
            conn.execute(sql.SWEEP_KEYS, (now,))
            expires_at = None if ttl_seconds is None else now + ttl_seconds
            conn.execute(sql.SET_KEY, (key, value, expires_at))

    def key_get(self, key: str) -> bytes | None:
        """See :meth:`sergeant.connector.Connector.key_get`."""
        rows = self._rows(sql.GET_KEY, (key, time.time()))
        return bytes(rows[0][0]) if rows else None

    def key_delete(self, key: str) -> bool:
        """See :meth:`sergeant.connector.Connector.key_delete`."""
        rows = self._rows(sql.DELETE_KEY, (key,))
        return bool(rows) and (rows[0][0] is None or rows[0][0] > time.time())

    def lock(self, name: str) -> Lock:
        """See :meth:`sergeant.connector.Connector.lock`."""
        return Lock(self, name)


class Lock(base.Lock):
    """A named lock stored in the ``locks`` table; see :class:`sergeant.connector.Lock`.

    Args:
        connector: the connector whose file holds the lock.
        name: the lock's name.
    """

    def __init__(self, connector: Session, name: str) -> None:
        super().__init__(name)
        self._connector = connector

    def _try_acquire(self, ttl: int) -> bool:
        token = uuid.uuid4().hex
        now = time.time()
        params = (self.name, token, now + ttl, now)
        if self._connector._changed(sql.ACQUIRE_LOCK, params) != 1:
            return False
        self.token = token
        return True

    def release(self) -> bool:
        """See :meth:`sergeant.connector.Lock.release`."""
        if self.token is None:
            return False
        params = (self.name, self.token, time.time())
        self.token = None
        return self._connector._changed(sql.RELEASE_LOCK, params) == 1

    def is_locked(self) -> bool:
        """See :meth:`sergeant.connector.Lock.is_locked`."""
        return self.get_ttl() is not None

    def set_ttl(self, ttl: int) -> bool:
        """See :meth:`sergeant.connector.Lock.set_ttl`."""
        if self.token is None:
            return False
        now = time.time()
        params = (now + ttl, self.name, self.token, now)
        return self._connector._changed(sql.SET_LOCK_TTL, params) == 1

    def get_ttl(self) -> int | None:
        """See :meth:`sergeant.connector.Lock.get_ttl`."""
        now = time.time()
        rows = self._connector._rows(sql.GET_LOCK_EXPIRY, (self.name, now))
        return math.ceil(rows[0][0] - now) if rows else None
