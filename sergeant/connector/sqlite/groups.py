"""Grouped items of the SQLite broker (see ``_group_contract``).

A grouped row is an ordinary ``tasks`` row with a ``group_key`` (schema version 5,
see ``schema``): every other statement sees it as it sees any row. Only the lease
and the pop of a queue that has ready grouped rows take the ring below, and they
find out with one probe of the partial index ``tasks_group_ready``, which ungrouped
rows never enter; a queue without grouped rows takes the usual single statement.

The ring runs inside the caller's ``BEGIN IMMEDIATE`` transaction, so no other
process sees or changes anything in between:

* its members are the ungrouped ready items (``''``, first) and the group keys
  with ready rows in ascending order, found one at a time with an index seek past
  the last member visited;
* each visit takes the group's head (priority, then ``seq``), unless the group's
  leased rows, counted on ``tasks_group_leased``, reached the concurrency, or its
  ``group_starts`` rows in the rate window reached the rate; a taken row is leased
  (or deleted, for a pop) at once, so the next visit counts it;
* the walk stops at ``count`` rows or after a whole turn that took nothing, and
  ``group_ring`` keeps the last member taken from, where the next lease goes on.

A slot is a leased row, so whatever ends a lease (ack, release, reclaim, charge,
dead letter, ``release_owned``) frees it in its own transaction, with no counter to
keep right.
"""

from __future__ import annotations

import os
import sqlite3
import time
import typing
from collections.abc import Sequence

from sergeant.connector import _group_keys
from sergeant.connector._group_keys import HeldLimits
from sergeant.connector._queue_contract import Priority
from sergeant.connector._records import GroupCount, GroupLimits
from sergeant.connector.base import Delivery
from sergeant.connector.sqlite import sql
from sergeant.connector.sqlite.session import Session

__all__ = ["NO_LIMITS", "Groups", "has_grouped", "lease", "pop"]

#: The limits of a queue nobody set limits for.
NO_LIMITS = _group_keys.NO_LIMITS
# The ring member of the ungrouped items (group keys are never empty).
_UNGROUPED = ""

_READY = sql.GROUPED_READY

# (queue, priority, seq, eta, payload, group_key)
INSERT_GROUPED = """INSERT INTO tasks (queue, priority, seq, eta, payload, group_key)
    VALUES (?, ?, ?, ?, ?, ?)"""
# (queue): the one cheap check.
HAS_GROUPED = f"SELECT EXISTS (SELECT 1 FROM tasks WHERE queue = ? AND {_READY})"
# (queue, after)
NEXT_GROUP = f"""SELECT group_key FROM tasks WHERE queue = ? AND group_key > ? AND {_READY}
    ORDER BY group_key LIMIT 1"""
# (queue, group_key)
GROUP_HEAD = f"""SELECT id FROM tasks WHERE queue = ? AND group_key = ? AND {_READY}
    ORDER BY priority, seq LIMIT 1"""
# (queue): the ungrouped head, in pop order.
UNGROUPED_HEAD = f"""SELECT id FROM tasks WHERE queue = ? AND {sql.PLAIN_READY}
    ORDER BY priority, seq LIMIT 1"""
# (queue, group_key)
COUNT_GROUP_LEASED = """SELECT COUNT(*) FROM tasks WHERE queue = ? AND group_key = ?
    AND deadline IS NOT NULL AND group_key IS NOT NULL"""
# (deadline, owner, id)
LEASE_ONE = """UPDATE tasks SET deadline = ?, owner = ?, deliveries = deliveries + 1
    WHERE id = ? RETURNING seq, id, payload, deliveries"""
# (id)
POP_ONE = "DELETE FROM tasks WHERE id = ? RETURNING payload"

# (queue)
GET_RING = "SELECT last FROM group_ring WHERE queue = ?"
# (queue, last)
SET_RING = "INSERT OR REPLACE INTO group_ring (queue, last) VALUES (?, ?)"

# (queue, before)
SWEEP_STARTS = "DELETE FROM group_starts WHERE queue = ? AND at <= ?"
# (queue, group_key, after)
COUNT_STARTS = "SELECT COUNT(*) FROM group_starts WHERE queue = ? AND group_key = ? AND at > ?"
# (queue, group_key, at)
ADD_START = "INSERT INTO group_starts (queue, group_key, at) VALUES (?, ?, ?)"

# (now, queue, limit): a scan, for an operator.
GROUP_COUNTS = """SELECT group_key, ready, leased FROM (
    SELECT group_key,
        SUM(deadline IS NULL AND eta <= ?1) AS ready,
        SUM(deadline IS NOT NULL) AS leased
    FROM tasks WHERE queue = ?2 AND group_key IS NOT NULL GROUP BY group_key)
    WHERE ready + leased > 0 ORDER BY ready + leased DESC, group_key LIMIT ?3"""


def has_grouped(conn: sqlite3.Connection, queue: str) -> bool:
    """Whether ``queue`` has ready grouped rows (one seek of ``tasks_group_ready``)."""
    return bool(conn.execute(HAS_GROUPED, (queue,)).fetchall()[0][0])


class _Ring:
    """One walk of a queue's ring inside the caller's transaction."""

    def __init__(
        self, conn: sqlite3.Connection, queue: str, limits: GroupLimits, now: float
    ) -> None:
        self.conn = conn
        self.queue = queue
        self.limits = limits
        self.now = now
        self.blocked: set[str] = set()  # full for the rest of this walk
        self.rated = limits.rate_tasks > 0 and limits.rate_seconds > 0
        self.since = now - limits.rate_seconds
        self.ungrouped_empty = False

    def walk(self, count: int, take: typing.Callable[[int], None]) -> None:
        """Take up to ``count`` heads, one per member and visit, calling ``take(id)``."""
        conn, queue = self.conn, self.queue
        if self.rated:
            conn.execute(SWEEP_STARTS, (queue, self.since))
        rows = conn.execute(GET_RING, (queue,)).fetchall()
        position: str | None = rows[0][0] if rows else None

        def take_from(member: str) -> bool:
            head = self._head(member)
            if head is None:
                return False
            take(head)
            if member != _UNGROUPED and self.rated:
                conn.execute(ADD_START, (queue, member, self.now))
            return True

        last_taken = _group_keys.walk_ring(position, count, self._next, take_from)
        if last_taken is not None:
            conn.execute(SET_RING, (queue, last_taken))

    def _next(self, position: str | None) -> str | None:
        """The member after ``position`` in the ring, wrapping; None if it is empty."""
        if position is None:
            return self._first()
        found = self.conn.execute(NEXT_GROUP, (self.queue, position)).fetchall()
        if found:
            return str(found[0][0])
        return self._first()

    def _first(self) -> str | None:
        if not self.ungrouped_empty:
            return _UNGROUPED
        found = self.conn.execute(NEXT_GROUP, (self.queue, _UNGROUPED)).fetchall()
        return str(found[0][0]) if found else None

    def _head(self, member: str) -> int | None:
        """The row to take from ``member`` now, or None (empty, full or rate-bound)."""
        conn, queue = self.conn, self.queue
        if member == _UNGROUPED:
            found = conn.execute(UNGROUPED_HEAD, (queue,)).fetchall()
            if not found:
                self.ungrouped_empty = True
                return None
            return int(found[0][0])
        if member in self.blocked:
            return None
        concurrency = self.limits.concurrency
        if concurrency > 0:
            (leased,) = conn.execute(COUNT_GROUP_LEASED, (queue, member)).fetchall()[0]
            if leased >= concurrency:
                self.blocked.add(member)
                return None
        if self.rated:
            (started,) = conn.execute(COUNT_STARTS, (queue, member, self.since)).fetchall()[0]
            if started >= self.limits.rate_tasks:
                self.blocked.add(member)
                return None
        return int(conn.execute(GROUP_HEAD, (queue, member)).fetchall()[0][0])


def lease(
    conn: sqlite3.Connection,
    queue: str,
    count: int,
    owner: str,
    lease_seconds: float,
    limits: GroupLimits,
    now: float,
) -> list[Delivery]:
    """Lease up to ``count`` rows of ``queue`` round-robin over its groups, in ring order."""
    deliveries: list[Delivery] = []
    deadline = now + lease_seconds

    def take(item_id: int) -> None:
        seq, row_id, payload, times = conn.execute(
            LEASE_ONE, (deadline, owner, item_id)
        ).fetchall()[0]
        deliveries.append(Delivery(payload, str(row_id), seq, times))

    _Ring(conn, queue, limits, now).walk(count, take)
    return deliveries


def pop(conn: sqlite3.Connection, queue: str, count: int, now: float) -> list[bytes]:
    """Delete and return up to ``count`` rows of ``queue``, round-robin, with no limits."""
    payloads: list[bytes] = []

    def take(item_id: int) -> None:
        payloads.append(conn.execute(POP_ONE, (item_id,)).fetchall()[0][0])

    _Ring(conn, queue, NO_LIMITS, now).walk(count, take)
    return payloads


class Groups(HeldLimits, Session):
    """``push_grouped``, ``set_group_limits`` and ``group_counts`` of
    ``sergeant.connector.sqlite.Connector``; the grouped lease is :func:`lease`."""

    def __init__(self, file_path: str | os.PathLike[str]) -> None:
        super().__init__(file_path)
        self._group_limits: dict[str, GroupLimits] = {}

    def push_grouped(
        self,
        queue: str,
        items: Sequence[bytes],
        group_keys: Sequence[str],
        priority: Priority = "NORMAL",
        consumable_from: float = 0.0,
    ) -> None:
        """See :meth:`sergeant.connector.Connector.push_grouped`: one transaction."""
        _group_keys.check(items, group_keys)
        rank = sql.priority_rank(priority)
        if not items:
            return

        def push() -> None:
            self._check_room()
            with self._transaction() as conn:
                eta = consumable_from if consumable_from > time.time() else 0.0
                first = sql.advance(conn, sql.ADVANCE_TAIL, len(items)) - len(items) + 1
                rows = (
                    (queue, rank, first + i, eta, payload, key)
                    for i, (payload, key) in enumerate(zip(items, group_keys, strict=True))
                )
                conn.executemany(INSERT_GROUPED, rows)

        self._pushing(push)

    def group_counts(self, queue: str, limit: int = 20) -> list[GroupCount]:
        """See :meth:`sergeant.connector.Connector.group_counts`: one scan of the
        queue's grouped rows."""
        if limit <= 0:
            return []
        rows = self._rows(GROUP_COUNTS, (time.time(), queue, limit))
        return [GroupCount(str(key), int(ready), int(leased)) for key, ready, leased in rows]
