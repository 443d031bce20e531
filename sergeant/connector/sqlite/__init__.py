"""The embedded SQLite broker: several worker processes on one machine share one file.

No server to run: ``Connector(file_path='broker.sqlite3')``. The file is in WAL mode,
so readers never block the single writer; every read-modify-write step runs inside
``BEGIN IMMEDIATE``, which takes the write lock up front (waiting up to
:data:`DEFAULT_BUSY_TIMEOUT_SECONDS`), so two processes never hand out the same item.
The schema lives in ``sergeant.connector.sqlite.schema`` and every statement in
``sql``.

Each process opens its own connection on first use; connections are closed before a
``fork()`` and reopened lazily on either side, because SQLite forbids carrying an open
connection (or its file locks) across a fork.

A connection keeps the file it opened even when that file is deleted, moved or
replaced, and nobody else sees what it writes there. So the connector records the
file's identity (device and inode) when it opens it and compares it with the file
at its path at most every :data:`IDENTITY_CHECK_SECONDS`; when they differ, it
raises ``BrokerFileReplaced`` then and on every later call.

A full disk drains: pushes are refused with ``BrokerFull``, and leases,
acknowledgements and dead-lettering go on, with room kept for them by a reserve file
beside the broker file (see ``sergeant.connector.sqlite.reserve``).

The file gives back the room of what it no longer holds (see
``sergeant.connector.sqlite.space``): after a batch is consumed or deleted, and while a
worker polls an empty queue, at most every :data:`MAINTENANCE_SECONDS`.

This module holds the queue and lease operations; the connection and the rules
above in ``session``, dead letters in ``dead``, keys and locks in
``keys``, live workers in ``registry``, held workflow steps in ``flows``, the
listing and removal of waiting items in ``waiting``, grouped items in ``groups``.
"""

from __future__ import annotations

import sqlite3
import time
import typing
from collections.abc import Sequence

from sergeant.connector import _unique
from sergeant.connector.base import Delivery, Priority, ReclaimResult
from sergeant.connector.sqlite import groups, registry, sql, unique
from sergeant.connector.sqlite.dead import DeadLetters
from sergeant.connector.sqlite.flows import Flows
from sergeant.connector.sqlite.groups import Groups
from sergeant.connector.sqlite.keys import Keys, Lock
from sergeant.connector.sqlite.once import Once
from sergeant.connector.sqlite.permits import Permits
from sergeant.connector.sqlite.registry import Registry
from sergeant.connector.sqlite.session import (
    DEFAULT_BUSY_TIMEOUT_SECONDS,
    IDENTITY_CHECK_SECONDS,
    KEEP_BYTES,
    MAINTENANCE_SECONDS,
)
from sergeant.connector.sqlite.waiting import WaitingItems

__all__ = [
    "DEFAULT_BUSY_TIMEOUT_SECONDS",
    "IDENTITY_CHECK_SECONDS",
    "KEEP_BYTES",
    "MAINTENANCE_SECONDS",
    "POLL_FIRST_SECONDS",
    "POLL_MAX_SECONDS",
    "Connector",
    "Lock",
]

#: First pause (seconds) between two polls of a blocking lease; it doubles each poll.
POLL_FIRST_SECONDS = 0.001
#: Longest pause (seconds) between two polls of a blocking lease.
POLL_MAX_SECONDS = 0.05


class Connector(DeadLetters, Flows, Groups, Keys, Once, Permits, Registry, WaitingItems):
    """A broker stored in one SQLite file, shared by the processes of one machine.

    Args:
        file_path: the SQLite file; it and its directory are created when missing.
    """

    name: typing.ClassVar[str] = "local"
    supports_blocking: typing.ClassVar[bool] = False
    names_running_by: typing.Literal["slot", "token"] | None = "token"

    # -- ready and delayed items ------------------------------------------------------

    def push_many(
        self,
        queue: str,
        payloads: Sequence[bytes],
        priority: Priority = "NORMAL",
        consumable_from: float = 0.0,
    ) -> int:
        """See :meth:`sergeant.connector.Connector.push_many`."""
        count = len(payloads)
        rank = sql.priority_rank(priority)
        if count == 0:
            return 0

        def push() -> None:
            self._check_room()
            with self._transaction() as conn:
                eta = consumable_from if consumable_from > time.time() else 0.0
                first = sql.advance(conn, sql.ADVANCE_TAIL, count) - count + 1
                rows = ((queue, rank, first + i, eta, p) for i, p in enumerate(payloads))
                conn.executemany(sql.INSERT_TASK, rows)

        self._pushing(push)
        return count

    def push_unique(
        self,
        queue: str,
        items: Sequence[bytes],
        unique_keys: Sequence[str | None],
        task_ids: Sequence[str],
        priority: Priority = "NORMAL",
        consumable_from: float = 0.0,
    ) -> list[str]:
        """See :meth:`sergeant.connector.Connector.push_unique`: INSERT OR IGNORE on the
        partial UNIQUE index ``(queue, unique_key)``, then the holder read, in one
        transaction."""
        _unique.check(items, unique_keys, task_ids)
        rank = sql.priority_rank(priority)
        if not items:
            return []

        def push() -> list[str]:
            self._check_room()
            with self._transaction() as conn:
                eta = consumable_from if consumable_from > time.time() else 0.0
                rows = list(zip(items, unique_keys, task_ids, strict=True))
                return unique.push_unique(conn, queue, rank, eta, rows)

        return self._pushing(push)

    def pop_many(self, queue: str, count: int) -> list[bytes]:
        """See :meth:`sergeant.connector.Connector.pop_many`."""
        if count <= 0:
            return []
        if self._seconds_until_ready(queue) != 0.0:
            self._maintain()  # idle: the time is free
            return []
        rows = self._draining(lambda: self._pop_now(queue, count))
        self._maintain()
        rows.sort(key=sql.pop_order)
        return [row[2] for row in rows]

    def _pop_now(self, queue: str, count: int) -> list[typing.Any]:
        with self._transaction() as conn:
            now = time.time()
            sql.make_due_ready(conn, queue, now)
            if groups.has_grouped(conn, queue):  # in ring order: keep it
                return [(n, 0, p) for n, p in enumerate(groups.pop(conn, queue, count, now))]
            return conn.execute(sql.POP_READY, (queue, count)).fetchall()

    def _seconds_until_ready(self, queue: str) -> float | None:
        """0 if an item is ready, seconds until the next delayed one, None if empty.

        A plain read, so idle pollers never take the write lock.
        """
        with self._session() as conn:
            ready, next_eta = conn.execute(sql.PEEK_READY, (queue, queue)).fetchall()[0]
        if ready:
            return 0.0
        if next_eta is None:
            return None
        return max(0.0, float(next_eta) - time.time())

    def length(self, queue: str, include_delayed: bool = False) -> int:
        """See :meth:`sergeant.connector.Connector.length`."""
        if include_delayed:
            return int(self._rows(sql.COUNT_WAITING, (queue, queue))[0][0])
        return int(self._rows(sql.COUNT_READY, (queue, queue, time.time()))[0][0])

    def length_by_priority(self, queue: str) -> dict[Priority, int]:
        """See :meth:`sergeant.connector.Connector.length_by_priority`."""
        with self._session() as conn:
            high, normal = registry.length_by_priority(conn, queue)
        return {"HIGH": high, "NORMAL": normal}

    def purge(self, queue: str) -> int:
        """See :meth:`sergeant.connector.Connector.purge`."""
        purged = self._draining(lambda: self._changed(sql.PURGE_WAITING, (queue, queue)))
        self._maintain()
        return purged

    # -- leases -----------------------------------------------------------------------

    def lease_many(
        self,
        queue: str,
        count: int,
        owner: str,
        lease_seconds: float,
        block_seconds: float = 0.0,
    ) -> list[Delivery]:
        """See :meth:`sergeant.connector.Connector.lease_many`.

        SQLite cannot wait for a push, so a blocking call polls: the pause starts at
        :data:`POLL_FIRST_SECONDS` and doubles up to :data:`POLL_MAX_SECONDS`, and is
        cut short when a delayed item falls due sooner.
        """
        if count <= 0:
            return []
        give_up = time.monotonic() + block_seconds
        pause = POLL_FIRST_SECONDS
        while True:
            wait = self._seconds_until_ready(queue)
            if wait == 0.0:
                leased = self._draining(lambda: self._lease_now(queue, count, owner, lease_seconds))
                if leased:
                    return leased
            remaining = give_up - time.monotonic()
            if remaining <= 0:
                return []
            self._maintain()  # idle: the time is free
            time.sleep(min(pause, remaining, wait or POLL_MAX_SECONDS))
            pause = min(pause * 2, POLL_MAX_SECONDS)

    def _lease_now(
        self, queue: str, count: int, owner: str, lease_seconds: float
    ) -> list[Delivery]:
        with self._transaction() as conn:
            now = time.time()
            sql.make_due_ready(conn, queue, now)
            if groups.has_grouped(conn, queue):
                limits = self._limits_of(queue)
                return groups.lease(conn, queue, count, owner, lease_seconds, limits, now)
            params = (now + lease_seconds, owner, queue, count)
            rows = conn.execute(sql.LEASE_READY, params).fetchall()
        rows.sort(key=sql.pop_order)
        return [
            Delivery(payload=payload, item_id=str(item_id), token=seq, deliveries=count)
            for _, seq, item_id, payload, count in rows
        ]

    def ack_many(self, queue: str, deliveries: Sequence[Delivery]) -> int:
        """See :meth:`sergeant.connector.Connector.ack_many`."""
        held = sql.held_params(queue, deliveries)
        if not held:
            return 0
        acked = self._draining(lambda: self._ack_now(held))
        self._maintain()
        return acked

    def _ack_now(self, held: list[tuple[int, str, int]]) -> int:
        with self._transaction() as conn:
            return conn.executemany(sql.ACK, held).rowcount

    def release_many(self, queue: str, deliveries: Sequence[Delivery]) -> int:
        """See :meth:`sergeant.connector.Connector.release_many`."""
        held = sql.held_params(queue, deliveries)
        if not held:
            return 0
        return self._draining(lambda: self._release_now(held))

    def _release_now(self, held: list[tuple[int, str, int]]) -> int:
        with self._transaction() as conn:
            head = sql.advance(conn, sql.ADVANCE_HEAD, len(held))
            rows = ((head + i, *row) for i, row in enumerate(held))
            return conn.executemany(sql.RELEASE, rows).rowcount

    def extend_leases(
        self, queue: str, deliveries: Sequence[Delivery], lease_seconds: float
    ) -> int:
        """See :meth:`sergeant.connector.Connector.extend_leases`."""
        held = sql.held_params(queue, deliveries)
        if not held:
            return 0
        return self._draining(lambda: self._extend_now(held, lease_seconds))

    def _extend_now(self, held: list[tuple[int, str, int]], lease_seconds: float) -> int:
        with self._transaction() as conn:
            deadline = time.time() + lease_seconds
            return conn.executemany(sql.EXTEND, ((deadline, *row) for row in held)).rowcount

    def reclaim_expired(self, queue: str, max_deliveries: int) -> ReclaimResult:
        """See :meth:`sergeant.connector.Connector.reclaim_expired`."""
        if not self._rows(sql.HAS_EXPIRED, (queue, time.time()))[0][
            0
        ]:  # the common case, answered without the write lock
            return ReclaimResult()
        return self._draining(lambda: self._reclaim_now(queue, max_deliveries))

    def _reclaim_now(self, queue: str, max_deliveries: int) -> ReclaimResult:
        with self._transaction() as conn:
            now = time.time()
            expired = conn.execute(sql.SELECT_EXPIRED, (queue, now)).fetchall()
            spent = [i for i, n in expired if 0 < max_deliveries <= n]
            requeue = [i for i, n in expired if not 0 < max_deliveries <= n]
            if spent:
                conn.executemany(sql.BURY_EXPIRED, ((now, i) for i in spent))
                conn.executemany(sql.DELETE_TASK, ((i,) for i in spent))
            self._to_head(conn, requeue)
        return ReclaimResult(requeued=len(requeue), dead_lettered=len(spent))

    def charge_many(
        self,
        queue: str,
        deliveries: Sequence[Delivery],
        max_deliveries: int,
        reason: str,
        error: str = "",
    ) -> ReclaimResult:
        """See :meth:`sergeant.connector.Connector.charge_many`.

        The delivery was counted when it was leased: charging keeps that count.
        """
        named = [d for d in deliveries if d.item_id]
        by_token = [d.token for d in deliveries if not d.item_id]
        if not named and not by_token:
            return ReclaimResult()
        with self._transaction() as conn:
            held = sql.held_params(queue, named)
            for token in by_token:  # recorded by a worker as token alone
                held += [
                    (i, queue, token) for (i,) in conn.execute(sql.SELECT_BY_TOKEN, (queue, token))
                ]
            found = [conn.execute(sql.SELECT_HELD, row).fetchall() for row in held]
            counts = [rows[0] for rows in found if rows]
            spent = [i for i, n in counts if 0 < max_deliveries <= n]
            requeue = [i for i, n in counts if not 0 < max_deliveries <= n]
            if spent:
                now = time.time()
                conn.executemany(sql.BURY_CHARGED, ((reason, error, now, i) for i in spent))
                conn.executemany(sql.DELETE_TASK, ((i,) for i in spent))
            self._to_head(conn, requeue)
        return ReclaimResult(requeued=len(requeue), dead_lettered=len(spent))

    @staticmethod
    def _to_head(conn: sqlite3.Connection, ids: list[int]) -> None:
        """Leased items back to the head of their priority, in this order, as counted."""
        if ids:
            head = sql.advance(conn, sql.ADVANCE_HEAD, len(ids))
            conn.executemany(sql.REQUEUE_EXPIRED, ((head + n, i) for n, i in enumerate(ids)))

    def extend_owned(self, queue: str, owner: str, lease_seconds: float) -> int:
        """See :meth:`sergeant.connector.Connector.extend_owned`."""
        with self._transaction() as conn:
            deadline = time.time() + lease_seconds
            return conn.execute(sql.EXTEND_OWNED, (deadline, queue, owner)).rowcount

    def release_owned(self, queue: str, owner: str) -> int:
        """See :meth:`sergeant.connector.Connector.release_owned`."""
        with self._transaction() as conn:
            owned = conn.execute(sql.SELECT_OWNED, (queue, owner)).fetchall()
            if not owned:
                return 0
            head = sql.advance(conn, sql.ADVANCE_HEAD, len(owned))
            rows = ((head + n, i, queue, seq) for n, (i, seq) in enumerate(owned))
            return conn.executemany(sql.RELEASE, rows).rowcount

    def leased_count(self, queue: str) -> int:
        """See :meth:`sergeant.connector.Connector.leased_count`."""
        return int(self._rows(sql.COUNT_LEASED, (queue,))[0][0])
