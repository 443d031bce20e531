"""Held workflow steps of the SQLite broker (see ``sergeant.connector._flow_contract``).

A node is a row of ``flow_nodes`` and its recorded members are rows of
``flow_values`` (both described in ``sergeant.connector.sqlite.schema``). Every
hold and advance is one ``BEGIN IMMEDIATE`` transaction: it records what it was
given, and when that completes a held node it inserts the held item into ``tasks``
as ``push_many`` does (at the tail of its priority) and marks the node released,
so no crash can leave a node recorded complete but not pushed, and no two
processes push it twice. A member recorded again is an ``INSERT OR IGNORE`` that
changes nothing, so it counts once and keeps its first value.

Expired nodes are invisible to reads. A hold or advance deletes its own node (with
its values) when it has expired, and sweeps at most :data:`SWEEP_BATCH` other
expired nodes, so the tables stay bounded by the nodes of the last ``ttl_seconds``.
"""

from __future__ import annotations

import sqlite3
import time

from sergeant.connector.base import Priority
from sergeant.connector.sqlite import sql
from sergeant.connector.sqlite.session import Session
from sergeant.errors import BrokerFull

__all__ = ["SWEEP_BATCH", "Flows"]

#: Most expired nodes one hold or advance deletes besides its own.
SWEEP_BATCH = 16

_NODE = "queue = ? AND flow_id = ? AND node = ?"

# (queue, flow_id, node, now): the node, if it has expired (its values go next).
DROP_EXPIRED_NODE = f"DELETE FROM flow_nodes WHERE {_NODE} AND expires_at <= ?"
# (queue, flow_id, node)
DELETE_VALUES = f"DELETE FROM flow_values WHERE {_NODE}"
# (now, limit)
SELECT_EXPIRED_NODES = """SELECT queue, flow_id, node FROM flow_nodes
    WHERE expires_at <= ? ORDER BY expires_at LIMIT ?"""
# (queue, flow_id, node)
DELETE_NODE = f"DELETE FROM flow_nodes WHERE {_NODE}"
# (queue, flow_id, node, payload, high, needed, expires_at): a node not held yet
# takes the hold; a held one keeps its own. Only the expiry moves.
HOLD_NODE = """INSERT INTO flow_nodes
    (queue, flow_id, node, payload, high, needed, released, expires_at)
    VALUES (?, ?, ?, ?, ?, ?, 0, ?)
    ON CONFLICT (queue, flow_id, node) DO UPDATE SET
        payload = CASE WHEN needed = 0 THEN excluded.payload ELSE payload END,
        high = CASE WHEN needed = 0 THEN excluded.high ELSE high END,
        needed = CASE WHEN needed = 0 THEN excluded.needed ELSE needed END,
        expires_at = excluded.expires_at"""
# (queue, flow_id, node, expires_at): a node not held yet, or a new expiry.
TOUCH_NODE = """INSERT INTO flow_nodes
    (queue, flow_id, node, payload, high, needed, released, expires_at)
    VALUES (?, ?, ?, x'', 0, 0, 0, ?)
    ON CONFLICT (queue, flow_id, node) DO UPDATE SET expires_at = excluded.expires_at"""
# (queue, flow_id, node, member, value)
RECORD_VALUE = """INSERT OR IGNORE INTO flow_values (queue, flow_id, node, member, value)
    VALUES (?, ?, ?, ?, ?)"""
# (queue, flow_id, node): marks a held node that has all its members released;
# returns its item (RETURNING shows the row after the update, payload still in it).
RELEASE_NODE = f"""UPDATE flow_nodes SET released = 1
    WHERE {_NODE} AND released = 0 AND needed > 0
        AND needed <= (SELECT COUNT(*) FROM flow_values AS v WHERE v.queue = flow_nodes.queue
            AND v.flow_id = flow_nodes.flow_id AND v.node = flow_nodes.node)
    RETURNING payload, high"""
# (queue, flow_id, node): the item is in ``tasks`` now; its copy here is not needed.
CLEAR_PAYLOAD = f"UPDATE flow_nodes SET payload = x'' WHERE {_NODE}"
# (queue, flow_id, node, now)
SELECT_RELEASED = f"SELECT released FROM flow_nodes WHERE {_NODE} AND expires_at > ?"
# (queue, flow_id, node, queue, flow_id, node, now)
SELECT_VALUES = f"""SELECT member, value FROM flow_values WHERE {_NODE}
    AND EXISTS (SELECT 1 FROM flow_nodes WHERE {_NODE} AND expires_at > ?)
    ORDER BY member"""


class Flows(Session):
    """The held-step operations of ``sergeant.connector.sqlite.Connector``."""

    def hold(
        self,
        queue: str,
        flow_id: str,
        node: int,
        payload: bytes,
        needed: int,
        priority: Priority = "NORMAL",
        ttl_seconds: float = 86400.0,
    ) -> None:
        """See :meth:`sergeant.connector.Connector.hold`.

        Stores a new item, so it is refused on a full disk as a push is.
        """
        if needed < 1:
            raise ValueError(f"needed is {needed}; a held step needs at least 1 member")
        high = int(sql.priority_rank(priority) == sql.PRIORITY_HIGH)
        key = (queue, flow_id, node)
        try:
            self._check_room()
            with self._transaction() as conn:
                now = time.time()
                _sweep(conn, key, now)
                conn.execute(HOLD_NODE, (*key, bytes(payload), high, needed, now + ttl_seconds))
                _release_if_complete(conn, key)
        except BrokerFull as exc:
            self._refusals.refused(exc)
            raise
        if self._refusals.count:
            self._refusals.accepted()

    def advance(
        self,
        queue: str,
        flow_id: str,
        node: int,
        member: int,
        value: bytes,
        ttl_seconds: float = 86400.0,
    ) -> bool:
        """See :meth:`sergeant.connector.Connector.advance`.

        Part of settling a task, so it goes on through a full disk as an
        acknowledgement does (it moves a stored item rather than adding one).
        """
        key = (queue, flow_id, node)
        return self._draining(lambda: self._advance_now(key, member, bytes(value), ttl_seconds))

    def _advance_now(
        self, key: tuple[str, str, int], member: int, value: bytes, ttl_seconds: float
    ) -> bool:
        with self._transaction() as conn:
            now = time.time()
            _sweep(conn, key, now)
            conn.execute(TOUCH_NODE, (*key, now + ttl_seconds))
            if conn.execute(RECORD_VALUE, (*key, member, value)).rowcount == 1:
                _release_if_complete(conn, key)  # only a new member can complete it
            rows = conn.execute(SELECT_RELEASED, (*key, now)).fetchall()
        return bool(rows and rows[0][0])

    def flow_values(self, queue: str, flow_id: str, node: int) -> dict[int, bytes]:
        """See :meth:`sergeant.connector.Connector.flow_values`."""
        key = (queue, flow_id, node)
        rows = self._rows(SELECT_VALUES, (*key, *key, time.time()))
        return {int(member): bytes(value) for member, value in rows}

    def flow_released(self, queue: str, flow_id: str, node: int) -> bool:
        """See :meth:`sergeant.connector.Connector.flow_released`."""
        rows = self._rows(SELECT_RELEASED, (queue, flow_id, node, time.time()))
        return bool(rows and rows[0][0])


def _sweep(conn: sqlite3.Connection, key: tuple[str, str, int], now: float) -> None:
    """Delete ``key``'s node if it has expired, and a few other expired nodes, with
    their values (inside the caller's transaction)."""
    if conn.execute(DROP_EXPIRED_NODE, (*key, now)).rowcount:
        conn.execute(DELETE_VALUES, key)
    expired = conn.execute(SELECT_EXPIRED_NODES, (now, SWEEP_BATCH)).fetchall()
    if expired:
        conn.executemany(DELETE_VALUES, expired)
        conn.executemany(DELETE_NODE, expired)


def _release_if_complete(conn: sqlite3.Connection, key: tuple[str, str, int]) -> None:
    """Push a complete held node's item as ``push_many`` would, and mark it released."""
    rows = conn.execute(RELEASE_NODE, key).fetchall()
    if not rows:
        return
    payload, high = rows[0]
    if payload:  # an empty payload only counts
        rank = sql.PRIORITY_HIGH if high else sql.PRIORITY_NORMAL
        seq = sql.advance(conn, sql.ADVANCE_TAIL, 1)
        conn.execute(sql.INSERT_TASK, (key[0], rank, seq, 0.0, bytes(payload)))
        conn.execute(CLEAR_PAYLOAD, key)
