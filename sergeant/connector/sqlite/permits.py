"""The SQLite broker's start permits (see ``_permits_contract``), in the ``starts``
table (schema version 5): one row per grant, ``(key, at, count)``.

One ``BEGIN IMMEDIATE`` transaction deletes the key's grants older than the window,
reads the rest, and inserts the new grant: the write lock is held throughout, so
no two processes grant from the same count. ``at`` is the caller's ``time.time()``.
"""

from __future__ import annotations

import time

from sergeant.connector import _permits
from sergeant.connector.sqlite.session import Session

__all__ = ["Permits"]

#: (key, oldest ``at`` to drop)
DROP_OLD = "DELETE FROM starts WHERE key = ? AND at <= ?"
#: (key,)
SELECT_LOG = "SELECT at, count FROM starts WHERE key = ?"
#: (key, at, count)
INSERT_GRANT = "INSERT INTO starts (key, at, count) VALUES (?, ?, ?)"


class Permits(Session):
    """``take_starts`` of ``sergeant.connector.sqlite.Connector``."""

    def take_starts(
        self, key: str, tasks: int, window_seconds: float, want: int
    ) -> tuple[int, float]:
        """See :meth:`sergeant.connector.Connector.take_starts`: one transaction."""
        _permits.check(tasks, window_seconds, want)
        with self._transaction() as conn:
            now = time.time()
            conn.execute(DROP_OLD, (key, now - window_seconds))
            log = conn.execute(SELECT_LOG, (key,)).fetchall()
            found = _permits.grant(log, now, tasks, window_seconds, want)
            if found.granted:
                conn.execute(INSERT_GRANT, (key, now, found.granted))
        return found.granted, found.retry_seconds
