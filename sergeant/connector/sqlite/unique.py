"""The SQLite unique push: each keyed row is inserted unless the partial UNIQUE index
``tasks_unique`` already holds its key, inside the caller's push transaction."""

from __future__ import annotations

import sqlite3
import typing

from sergeant.connector.sqlite import sql

__all__ = ["push_unique"]

# (queue, priority, seq, eta, payload, unique_key, task_id)
INSERT_UNIQUE = """INSERT OR IGNORE INTO tasks
    (queue, priority, seq, eta, payload, unique_key, task_id) VALUES (?, ?, ?, ?, ?, ?, ?)"""
# (queue, unique_key)
SELECT_HOLDER = "SELECT task_id FROM tasks WHERE queue = ? AND unique_key = ?"


def push_unique(
    conn: sqlite3.Connection,
    queue: str,
    rank: int,
    eta: float,
    rows: typing.Sequence[tuple[bytes, str | None, str]],
) -> list[str]:
    """Insert ``(payload, unique_key, task_id)`` rows whose key is free; per row, the
    task id holding its key. Runs in the caller's ``BEGIN IMMEDIATE`` transaction."""
    first = sql.advance(conn, sql.ADVANCE_TAIL, len(rows)) - len(rows) + 1
    holders = []
    for offset, (payload, key, task_id) in enumerate(rows):
        params = (queue, rank, first + offset, eta, payload, key, task_id)
        if conn.execute(INSERT_UNIQUE, params).rowcount == 1 or key is None:
            holders.append(task_id)
            continue
        (holder,) = conn.execute(SELECT_HOLDER, (queue, key)).fetchall()[0]
        holders.append(str(holder))
    return holders
