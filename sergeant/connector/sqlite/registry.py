"""Operator views of the SQLite broker: the live-worker registry and per-priority lengths.

The ``workers`` table (schema version 2, created in ``sql``) holds one row per
worker: ``id``, ``info`` (the JSON the worker wrote) and ``expires_at`` (Unix
seconds, the writer's clock). Reads skip expired rows, so a dead worker vanishes on
its own; every registration sweeps them, which only bounds the table's size.

The functions run on a connection the caller holds (``Connector._session``).
"""

from __future__ import annotations

import sqlite3
import time

from sergeant.connector.sqlite import sql
from sergeant.connector.sqlite.session import Session
from sergeant.connector.sqlite.sql import PRIORITY_HIGH

__all__ = ["Registry", "length_by_priority", "live", "register", "unregister"]

# (id, info, expires_at)
UPSERT_WORKER = "INSERT OR REPLACE INTO workers (id, info, expires_at) VALUES (?, ?, ?)"
# (now)
SWEEP_WORKERS = "DELETE FROM workers WHERE expires_at <= ?"
# (id)
DELETE_WORKER = "DELETE FROM workers WHERE id = ? RETURNING expires_at"
# (now)
LIVE_WORKERS = "SELECT info FROM workers WHERE expires_at > ? ORDER BY expires_at"
# Ready per priority, due delayed included, each part on its partial index:
# (queue, queue, now).
COUNT_READY_BY_PRIORITY = f"""SELECT priority, COUNT(*) FROM (
    SELECT priority FROM tasks WHERE queue = ?1 AND {sql.PLAIN_READY}
    UNION ALL SELECT priority FROM tasks WHERE queue = ?1 AND {sql.GROUPED_READY}
    UNION ALL SELECT priority FROM tasks
        WHERE queue = ?2 AND deadline IS NULL AND eta > 0 AND eta <= ?3)
    GROUP BY priority"""


def register(conn: sqlite3.Connection, worker_id: str, info: bytes, ttl_seconds: float) -> None:
    """Publish or refresh a worker's heartbeat (autocommit statements)."""
    now = time.time()
    conn.execute(SWEEP_WORKERS, (now,))
    conn.execute(UPSERT_WORKER, (worker_id, info, now + ttl_seconds))


def unregister(conn: sqlite3.Connection, worker_id: str) -> bool:
    """Remove a worker's heartbeat; True if it was alive."""
    rows = conn.execute(DELETE_WORKER, (worker_id,)).fetchall()
    return bool(rows) and float(rows[0][0]) > time.time()


def live(conn: sqlite3.Connection) -> list[bytes]:
    """The info of every worker whose heartbeat has not expired."""
    return [bytes(row[0]) for row in conn.execute(LIVE_WORKERS, (time.time(),)).fetchall()]


def length_by_priority(conn: sqlite3.Connection, queue: str) -> tuple[int, int]:
    """Ready ``(HIGH, NORMAL)`` items of ``queue``, due delayed ones included."""
    counts = dict(conn.execute(COUNT_READY_BY_PRIORITY, (queue, queue, time.time())).fetchall())
    high = int(counts.pop(PRIORITY_HIGH, 0))
    return high, int(sum(counts.values()))


class Registry(Session):
    """The live-worker operations of ``sergeant.connector.sqlite.Connector``."""

    def register_worker(self, worker_id: str, info: bytes, ttl_seconds: float) -> None:
        """See :meth:`sergeant.connector.Connector.register_worker`."""
        with self._session() as conn:
            register(conn, worker_id, info, ttl_seconds)

    def unregister_worker(self, worker_id: str) -> bool:
        """See :meth:`sergeant.connector.Connector.unregister_worker`."""
        return self._draining(lambda: self._unregister_now(worker_id))

    def _unregister_now(self, worker_id: str) -> bool:
        with self._session() as conn:
            return unregister(conn, worker_id)

    def workers(self) -> list[bytes]:
        """See :meth:`sergeant.connector.Connector.workers`."""
        with self._session() as conn:
            return live(conn)
