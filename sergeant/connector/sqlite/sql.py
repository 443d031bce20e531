"""Statements and per-connection steps of the embedded SQLite broker.

The tables and indexes are described in ``sergeant.connector.sqlite.schema``; each
query below repeats its partial index's WHERE terms literally, which is what lets
SQLite's planner use a partial index.

The functions at the end run on a connection the caller holds (and, for the
read-modify-write ones, inside the caller's ``BEGIN IMMEDIATE`` transaction).
"""

from __future__ import annotations

import contextlib
import sqlite3
import typing
from collections.abc import Sequence

from sergeant.connector.base import Delivery

#: ``priority`` column values.
PRIORITY_HIGH = 0
PRIORITY_NORMAL = 1
_PRIORITY_RANKS = {"HIGH": PRIORITY_HIGH, "NORMAL": PRIORITY_NORMAL}

# -- pragmas and transactions ---------------------------------------------------------

PRAGMA_BUSY_TIMEOUT = "PRAGMA busy_timeout = {milliseconds:d}"
BEGIN_IMMEDIATE = "BEGIN IMMEDIATE"
COMMIT = "COMMIT"
ROLLBACK = "ROLLBACK"
PING = "SELECT 1"
FREELIST_COUNT = "PRAGMA freelist_count"
PAGE_SIZE = "PRAGMA page_size"
PAGE_COUNT = "PRAGMA page_count"
# Only a file with no pages yet takes it directly (so before the switch to WAL, which
# writes the first page); any other file takes it at its next VACUUM. On a file that
# already has auto-vacuum it is a write, so it is only set where it is needed.
PRAGMA_AUTO_VACUUM = "PRAGMA auto_vacuum = INCREMENTAL"
GET_AUTO_VACUUM = "PRAGMA auto_vacuum"
VACUUM = "VACUUM"
INCREMENTAL_VACUUM = "PRAGMA incremental_vacuum({pages:d})"
# The log is cut to this size whenever it starts over (per connection).
PRAGMA_JOURNAL_SIZE_LIMIT = "PRAGMA journal_size_limit = {size:d}"
CHECKPOINT_TRUNCATE = "PRAGMA wal_checkpoint(TRUNCATE)"

# -- counters -------------------------------------------------------------------------

# Both return the counter's new value; the caller uses the ``count`` values ending
# (tail) or starting (head) there.
ADVANCE_TAIL = "UPDATE counters SET value = value + ? WHERE name = 'tail' RETURNING value"
ADVANCE_HEAD = "UPDATE counters SET value = value - ? WHERE name = 'head' RETURNING value"

# -- ready and delayed items ----------------------------------------------------------

INSERT_TASK = "INSERT INTO tasks (queue, priority, seq, eta, payload) VALUES (?, ?, ?, ?, ?)"

# Ready rows: ungrouped ones on ``tasks_ready``, grouped ones on ``tasks_group_ready``
# (schema version 5), so a query over both has one half per index.
PLAIN_READY = "deadline IS NULL AND eta = 0 AND group_key IS NULL"
GROUPED_READY = "deadline IS NULL AND eta = 0 AND group_key IS NOT NULL"

# Cheap read before taking the write lock: is anything ready, and when is the next
# delayed item due? (queue, queue)
PEEK_READY = f"""SELECT
    EXISTS (SELECT 1 FROM tasks WHERE queue = ?1 AND {PLAIN_READY})
    OR EXISTS (SELECT 1 FROM tasks WHERE queue = ?1 AND {GROUPED_READY}),
    (SELECT MIN(eta) FROM tasks WHERE queue = ?2 AND deadline IS NULL AND eta > 0)"""

# (queue, now)
SELECT_DUE = """SELECT id FROM tasks
    WHERE queue = ? AND deadline IS NULL AND eta > 0 AND eta <= ?
    ORDER BY eta, seq"""
# (seq, id)
MAKE_READY = "UPDATE tasks SET eta = 0, seq = ? WHERE id = ?"

# The pop order of a queue without ready grouped rows (``groups`` serves the others),
# shared by pop and lease: (queue, count).
_SELECT_NEXT = f"""SELECT id FROM tasks
    WHERE queue = ? AND {PLAIN_READY}
    ORDER BY priority, seq LIMIT ?"""

# RETURNING order is unspecified: callers sort by (priority, seq).
# (queue, count)
POP_READY = f"""DELETE FROM tasks WHERE id IN ({_SELECT_NEXT})
    RETURNING priority, seq, payload"""
# (deadline, owner, queue, count)
LEASE_READY = f"""UPDATE tasks SET deadline = ?, owner = ?, deliveries = deliveries + 1
    WHERE id IN ({_SELECT_NEXT})
    RETURNING priority, seq, id, payload, deliveries"""

# (queue, queue, now)
COUNT_READY = f"""SELECT
    (SELECT COUNT(*) FROM tasks WHERE queue = ?1 AND {PLAIN_READY})
    + (SELECT COUNT(*) FROM tasks WHERE queue = ?1 AND {GROUPED_READY})
    + (SELECT COUNT(*) FROM tasks
        WHERE queue = ?2 AND deadline IS NULL AND eta > 0 AND eta <= ?3)"""
# Ready and delayed, split so that each part uses its partial index: (queue, queue).
COUNT_WAITING = f"""SELECT
    (SELECT COUNT(*) FROM tasks WHERE queue = ?1 AND {PLAIN_READY})
    + (SELECT COUNT(*) FROM tasks WHERE queue = ?1 AND {GROUPED_READY})
    + (SELECT COUNT(*) FROM tasks WHERE queue = ?2 AND deadline IS NULL AND eta > 0)"""
PURGE_WAITING = f"""DELETE FROM tasks WHERE id IN (
    SELECT id FROM tasks WHERE queue = ?1 AND {PLAIN_READY}
    UNION ALL SELECT id FROM tasks WHERE queue = ?1 AND {GROUPED_READY}
    UNION ALL SELECT id FROM tasks WHERE queue = ?2 AND deadline IS NULL AND eta > 0)"""

# -- leases: every statement checks the fencing token ---------------------------------

_HELD = "id = ? AND queue = ? AND deadline IS NOT NULL AND seq = ?"
# (id, queue, token)
ACK = f"DELETE FROM tasks WHERE {_HELD}"
# (seq, id, queue, token)
RELEASE = f"""UPDATE tasks
    SET deadline = NULL, owner = NULL, deliveries = deliveries - 1, seq = ?
    WHERE {_HELD}"""
# (deadline, id, queue, token)
EXTEND = f"UPDATE tasks SET deadline = ? WHERE {_HELD}"
# (reason, error, now, id, queue, token)
DEAD_LETTER = f"""INSERT INTO dead
    (queue, task_id, payload, reason, error, deliveries, dead_at, group_key)
    SELECT queue, id, payload, ?, ?, deliveries, ?, group_key FROM tasks WHERE {_HELD}"""
COUNT_LEASED = "SELECT COUNT(*) FROM tasks WHERE queue = ? AND deadline IS NOT NULL"

# (queue, now)
HAS_EXPIRED = """SELECT EXISTS (SELECT 1 FROM tasks
    WHERE queue = ? AND deadline IS NOT NULL AND deadline <= ?)"""
# (queue, now)
SELECT_EXPIRED = """SELECT id, deliveries FROM tasks
    WHERE queue = ? AND deadline IS NOT NULL AND deadline <= ?
    ORDER BY priority, seq"""
# (seq, id)
REQUEUE_EXPIRED = "UPDATE tasks SET deadline = NULL, owner = NULL, seq = ? WHERE id = ?"
# (now, id)
BURY_EXPIRED = """INSERT INTO dead
    (queue, task_id, payload, reason, error, deliveries, dead_at, group_key)
    SELECT queue, id, payload, 'worker died', '', deliveries, ?, group_key
    FROM tasks WHERE id = ?"""
# (id)
DELETE_TASK = "DELETE FROM tasks WHERE id = ?"

# (queue, now, owner)
EXTEND_OWNED = """UPDATE tasks SET deadline = ?
    WHERE queue = ? AND deadline IS NOT NULL AND owner = ?"""
# (queue, owner): in the order they were leased
SELECT_OWNED = """SELECT id, seq FROM tasks
    WHERE queue = ? AND deadline IS NOT NULL AND owner = ?
    ORDER BY priority, seq"""
# (queue, token): the item a lease names by its token alone (a leased item's seq is
# its token, and seqs never repeat)
SELECT_BY_TOKEN = "SELECT id FROM tasks WHERE queue = ? AND deadline IS NOT NULL AND seq = ?"
# (id, queue, token): a held lease's delivery count
SELECT_HELD = f"SELECT id, deliveries FROM tasks WHERE {_HELD}"
# (reason, error, now, id)
BURY_CHARGED = """INSERT INTO dead
    (queue, task_id, payload, reason, error, deliveries, dead_at, group_key)
    SELECT queue, id, payload, ?, ?, deliveries, ?, group_key FROM tasks WHERE id = ?"""

# -- dead letters ---------------------------------------------------------------------

# (queue, limit); a negative limit means no limit. Columns in DeadLetter's order, then
# id and group_key.
SELECT_DEAD = """SELECT task_id, payload, reason, error, deliveries, dead_at, id, group_key
    FROM dead WHERE queue = ? ORDER BY id LIMIT ?"""
# (id, queue, seq, payload, group_key): back under the item's own id, so item ids stay
# stable, and in its group.
REVIVE_TASK = """INSERT INTO tasks (id, queue, priority, seq, eta, payload, deliveries, group_key)
    VALUES (?, ?, 1, ?, 0, ?, 0, ?)"""
DELETE_DEAD = "DELETE FROM dead WHERE id = ?"
PURGE_DEAD = "DELETE FROM dead WHERE queue = ?"
COUNT_DEAD = "SELECT COUNT(*) FROM dead WHERE queue = ?"

# -- keys -----------------------------------------------------------------------------

# (key, value, expires_at)
SET_KEY = "INSERT OR REPLACE INTO keys (key, value, expires_at) VALUES (?, ?, ?)"
# (now)
SWEEP_KEYS = "DELETE FROM keys WHERE expires_at IS NOT NULL AND expires_at <= ?"
# (key, now)
GET_KEY = "SELECT value FROM keys WHERE key = ? AND (expires_at IS NULL OR expires_at > ?)"
# (key)
DELETE_KEY = "DELETE FROM keys WHERE key = ? RETURNING expires_at"

# -- locks ----------------------------------------------------------------------------

# Takes a free or expired lock in one statement: (name, token, expires_at, now).
ACQUIRE_LOCK = """INSERT INTO locks (name, token, expires_at) VALUES (?, ?, ?)
    ON CONFLICT (name) DO UPDATE SET token = excluded.token, expires_at = excluded.expires_at
    WHERE locks.expires_at <= ?"""
# (name, token, now)
RELEASE_LOCK = "DELETE FROM locks WHERE name = ? AND token = ? AND expires_at > ?"
# (expires_at, name, token, now)
SET_LOCK_TTL = "UPDATE locks SET expires_at = ? WHERE name = ? AND token = ? AND expires_at > ?"
# (name, now)
GET_LOCK_EXPIRY = "SELECT expires_at FROM locks WHERE name = ? AND expires_at > ?"


# -- steps ----------------------------------------------------------------------------

# SQLite result codes (the low byte of an extended code) meaning "someone holds it".
_SQLITE_BUSY, _SQLITE_LOCKED = 5, 6
# ... and "the disk (or the file's page limit) is full".
_SQLITE_FULL = 13


def is_busy(exc: sqlite3.Error) -> bool:
    """Whether ``exc`` means another connection held the lock (so a retry may work)."""
    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+
    if isinstance(code, int):
        return code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED)
    return "locked" in str(exc) or "busy" in str(exc)


def is_full(exc: sqlite3.Error) -> bool:
    """Whether ``exc`` means the disk (or the file's page limit) had no room for a write."""
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF == _SQLITE_FULL
    return "database or disk is full" in str(exc)


def free_bytes(conn: sqlite3.Connection) -> int:
    """Bytes of the file's free pages (left by deletions), which writes reuse first."""
    (pages,) = conn.execute(FREELIST_COUNT).fetchall()[0]
    (size,) = conn.execute(PAGE_SIZE).fetchall()[0]
    return int(pages) * int(size)


#: Moves the log's frames into the file where no reader needs them; never grows a file.
CHECKPOINT_PASSIVE = "PRAGMA wal_checkpoint(PASSIVE)"


def rollback(conn: sqlite3.Connection) -> None:
    """Roll back the open transaction, if any; a failure here must not hide the cause."""
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute(ROLLBACK)


def advance(conn: sqlite3.Connection, counter: str, count: int) -> int:
    """Move a sequence counter (:data:`ADVANCE_TAIL` or :data:`ADVANCE_HEAD`) by ``count``.

    Returns:
        The counter's new value.
    """
    (value,) = conn.execute(counter, (count,)).fetchall()[0]
    return int(value)


def make_due_ready(conn: sqlite3.Connection, queue: str, now: float) -> None:
    """Append the due delayed items of ``queue`` to the tail of their priority, in due order."""
    due = conn.execute(SELECT_DUE, (queue, now)).fetchall()
    if due:
        first = advance(conn, ADVANCE_TAIL, len(due)) - len(due) + 1
        conn.executemany(MAKE_READY, ((first + i, row[0]) for i, row in enumerate(due)))


# -- parameters -----------------------------------------------------------------------


def priority_rank(priority: str) -> int:
    """The ``priority`` column value of ``'HIGH'`` or ``'NORMAL'``."""
    try:
        return _PRIORITY_RANKS[priority]
    except KeyError:
        raise ValueError(f"priority is {priority!r}; use 'NORMAL' or 'HIGH'") from None


def pop_order(row: Sequence[typing.Any]) -> tuple[int, int]:
    """Sort key of POP_READY / LEASE_READY rows, whose RETURNING order is unspecified."""
    return row[0], row[1]


def held_params(queue: str, deliveries: Sequence[Delivery]) -> list[tuple[int, str, int]]:
    """``(id, queue, token)`` per distinct item, for the statements that check a lease.

    Ids that are not integers cannot be this broker's, so cannot be held: skipped.
    """
    rows: dict[int, tuple[int, str, int]] = {}
    for delivery in deliveries:
        if delivery.item_id.isdigit():
            item_id = int(delivery.item_id)
            rows.setdefault(item_id, (item_id, queue, delivery.token))
    return list(rows.values())
