"""The embedded SQLite broker: several worker processes on one machine share one file.

No server to run: ``Connector(file_path='broker.sqlite3')``. The file is in WAL mode,
so readers never block the single writer; every read-modify-write step runs inside
``BEGIN IMMEDIATE``, which takes the write lock up front (waiting up to
:data:`DEFAULT_BUSY_TIMEOUT_SECONDS`), so two processes never hand out the same item.
The schema and every statement live in ``sergeant.connector.local_sql``.

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
beside the broker file (see ``sergeant.connector.local_reserve``).

The file gives back the room of what it no longer holds (see
``sergeant.connector.local_space``): after a batch is consumed or deleted, and while a
worker polls an empty queue, at most every :data:`MAINTENANCE_SECONDS`.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sqlite3
import threading
import time
import typing
import uuid
import weakref
from collections.abc import Iterator, Sequence

from sergeant import _full
from sergeant.connector import _connector, local_registry, local_reserve, local_space
from sergeant.connector import local_sql as sql
from sergeant.connector._connector import DeadLetter, Delivery, Priority, ReclaimResult
from sergeant.errors import (
    BrokerFileReplaced,
    BrokerFull,
    BrokerUnavailable,
    ConnectionLost,
    ConnectorError,
)

__all__ = ["Connector", "Lock"]

#: Seconds a statement waits for another process's write lock before failing.
DEFAULT_BUSY_TIMEOUT_SECONDS = 30.0
#: First pause (seconds) between two polls of a blocking lease; it doubles each poll.
POLL_FIRST_SECONDS = 0.001
#: Longest pause (seconds) between two polls of a blocking lease.
POLL_MAX_SECONDS = 0.05
#: Seconds between two checks that the file at ``file_path`` is still the one open.
IDENTITY_CHECK_SECONDS = 1.0
#: Seconds between two looks of one connector at the file's free pages and its log.
MAINTENANCE_SECONDS = 1.0
#: Bytes of free pages the file keeps (and of log it keeps when the log starts over):
#: the reserve's size, so pushes reuse pages and the full-disk rules hold.
KEEP_BYTES = local_reserve.RESERVE_BYTES

_BUSY_TIMEOUT_MS = int(DEFAULT_BUSY_TIMEOUT_SECONDS * 1000)

logger = logging.getLogger(__name__)

T = typing.TypeVar("T")

# Every open connector, so the fork hooks can close their connections.
_LIVE: weakref.WeakSet[Connector] = weakref.WeakSet()
# Connectors whose mutex the fork hook holds while the fork happens.
_FORKING: list[Connector] = []
# Connections inherited over a fork the hooks did not see (os.fork from C): touching
# them in the child is unsafe, and so is letting the garbage collector close them.
_ORPHANS: list[sqlite3.Connection] = []
# Files this process has said are too big to convert (said once per process).
_TOLD_TOO_BIG: set[str] = set()


class Connector(_connector.Connector):
    """A broker stored in one SQLite file, shared by the processes of one machine.

    Args:
        file_path: the SQLite file; it and its directory are created when missing.
    """

    name: typing.ClassVar[str] = "local"
    supports_blocking: typing.ClassVar[bool] = False
    names_running_by: typing.Literal["slot", "token"] | None = "token"

    def __init__(self, file_path: str | os.PathLike[str]) -> None:
        self.file_path = os.fspath(file_path)
        # Threaded executors call one connector from several threads; SQLite
        # connections must not be used by two threads at once.
        self._mutex = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid = 0
        self._closed = False
        self._identity: tuple[int, int] | None = None  # (st_dev, st_ino) of the open file
        self._next_identity_check = 0.0
        self._replaced: str | None = None  # why the open file is no longer at the path
        self._reserve = local_reserve.Reserve(self.file_path)
        self._next_maintenance = 0.0
        self._refusals = _full.Refusals(logger, f"SQLite broker file {self.file_path!r}")
        _LIVE.add(self)

    # -- connection -------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._closed:
            raise ConnectorError(
                f"the SQLite connector for {self.file_path!r} is closed; create a new one"
            )
        if self._replaced is not None:
            raise BrokerFileReplaced(self._replaced)
        if self._conn is not None and self._pid == os.getpid():
            if time.monotonic() >= self._next_identity_check:
                self._check_identity()
            return self._conn
        self._drop_connection()
        self._conn = self._open()
        self._pid = os.getpid()
        self._identity = None  # unknown: not checked
        with contextlib.suppress(OSError):
            self._identity = _file_identity(self.file_path)
        self._next_identity_check = time.monotonic() + IDENTITY_CHECK_SECONDS
        return self._conn

    def _check_identity(self) -> None:
        """Raise ``BrokerFileReplaced`` (from now on) if the file at the path is another one."""
        self._next_identity_check = time.monotonic() + IDENTITY_CHECK_SECONDS
        if self._identity is None:
            return
        try:
            now = _file_identity(self.file_path)
        except OSError:  # cannot tell now; SQLite reports real trouble itself
            return
        if now == self._identity:
            return
        what = "deleted or moved away" if now is None else "replaced by another file"
        self._replaced = (
            f"SQLite broker file {self.file_path!r} was {what} while this process had it "
            "open; what this connection reads and writes is no longer at that path, so "
            "tasks pushed there are not seen: create a new connector (a worker exits, and "
            "its supervisor starts a fresh one on the file now at that path)"
        )
        raise BrokerFileReplaced(self._replaced)

    def _drop_connection(self) -> None:
        if self._conn is None:
            return
        if self._pid == os.getpid():
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
        else:
            _ORPHANS.append(self._conn)
        self._conn = None

    def _open(self) -> sqlite3.Connection:
        try:
            conn = sql.connect(self.file_path, DEFAULT_BUSY_TIMEOUT_SECONDS, KEEP_BYTES)
        except sqlite3.Error as exc:
            if sql.is_busy(exc):
                raise  # becomes ConnectionLost in _errors
            raise self._unavailable(exc) from exc
        except OSError as exc:
            raise self._unavailable(exc) from exc
        # Best effort: a push asks again while it is missing.
        if self._reserve.make():  # not on a nearly full disk: VACUUM needs room
            self._convert(conn)
        return conn

    def _convert(self, conn: sqlite3.Connection) -> None:
        """Give a file made without auto-vacuum incremental auto-vacuum (once)."""
        outcome = local_space.convert(conn, self.file_path, _BUSY_TIMEOUT_MS)
        if outcome == "done":
            logger.info(
                "SQLite broker file %r now gives back the room of consumed tasks "
                "(converted to incremental auto-vacuum)",
                self.file_path,
                extra={"event": "broker_file_converted"},
            )
        elif outcome == "too big" and self.file_path not in _TOLD_TOO_BIG:
            _TOLD_TOO_BIG.add(self.file_path)
            logger.info(
                "SQLite broker file %r was made without auto-vacuum and is over %d MiB, "
                "too big to convert while workers use it, so it keeps its largest size; "
                "convert it once (workers wait while it runs): %s",
                self.file_path,
                local_space.CONVERT_MAX_BYTES >> 20,
                local_space.CONVERT_COMMAND.format(path=self.file_path),
                extra={"event": "broker_file_not_converted"},
            )
        # busy or failed (a full disk): a later open tries again

    def _unavailable(self, exc: BaseException) -> BrokerUnavailable:
        return BrokerUnavailable(
            f"SQLite broker file {self.file_path!r} cannot be opened ({exc}); check that "
            "its directory is writable and the file is a SQLite database, or change file_path"
        )

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            if sql.is_busy(exc):
                raise ConnectionLost(
                    f"SQLite broker file {self.file_path!r} stayed locked for "
                    f"{DEFAULT_BUSY_TIMEOUT_SECONDS:g} s by another process; retry, "
                    "or look for a process stuck in a write"
                ) from exc
            if sql.is_full(exc):
                raise self._full(f"its disk is full ({exc})") from exc
            raise ConnectorError(f"SQLite broker file {self.file_path!r}: {exc}") from exc

    @contextlib.contextmanager
    def _session(self) -> Iterator[sqlite3.Connection]:
        """The connection, held by this thread, with sqlite3 errors wrapped."""
        with self._mutex, self._errors():
            yield self._connection()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """A ``BEGIN IMMEDIATE`` transaction: the write lock is taken before any read."""
        with self._session() as conn:
            conn.execute(sql.BEGIN_IMMEDIATE)
            try:
                yield conn
                conn.execute(sql.COMMIT)
            except BaseException:
                sql.rollback(conn)
                raise

    def _full(self, why: str) -> BrokerFull:
        return BrokerFull(
            f"SQLite broker file {self.file_path!r}: {why}: nothing of this operation was "
            "stored; pushes are refused until workers drain the queues (which frees room "
            "in the file) or space is freed on that disk"
        )

    def _draining(self, step: typing.Callable[[], T]) -> T:
        """Run a step that hands out, settles or deletes what the file holds; when the
        disk is full, spend the reserve once and run it again (it never committed)."""
        try:
            return step()
        except BrokerFull:
            if not self._reserve.release():
                raise
        logger.warning(
            "the disk of SQLite broker file %r is full: its %d MiB reserve was released so "
            "that leases and acknowledgements go on; pushes are refused until there is "
            "room again",
            self.file_path,
            self._reserve.size >> 20,
            extra={"event": "broker_reserve_released"},
        )
        return step()

    def _check_room(self) -> None:
        """Refuse a push that would take the room kept for draining (see
        ``local_reserve``): the reserve is spent, the disk has no room to make it
        again, and the file's free pages hold less than it."""
        if self._reserve.present():
            return
        with self._session() as conn:  # the first use opens the file and makes the reserve
            if self._reserve.make():
                return
            free = sql.free_bytes(conn)
        if free < self._reserve.size:
            raise self._full(
                f"its disk is nearly full (the {self._reserve.size >> 20} MiB reserve "
                "kept for draining is spent)"
            )

    def _maintain(self) -> None:
        """Give back free pages and a large log, at most every MAINTENANCE_SECONDS.

        Never while the reserve is spent: the file's free pages and its log are then
        the room pushes and draining have, and another program could take it from the
        disk. A failure is left for the next time: what called this has succeeded.
        """
        now = time.monotonic()
        if now < self._next_maintenance:
            return
        self._next_maintenance = now + MAINTENANCE_SECONDS
        if not self._reserve.present():
            return
        try:
            with self._session() as conn:
                given = 0
                if local_space.converted(conn):  # read each time: an operator may convert
                    given = local_space.reclaim(conn, KEEP_BYTES, _BUSY_TIMEOUT_MS)
                local_space.trim_log(conn, self.file_path, KEEP_BYTES, _BUSY_TIMEOUT_MS)
        except ConnectorError as exc:
            logger.debug("SQLite broker file %r: giving back room failed (%s)", self.file_path, exc)
            return
        if given:
            logger.debug("SQLite broker file %r gave back %d pages", self.file_path, given)

    def _rows(self, statement: str, params: Sequence[object]) -> list[typing.Any]:
        """The rows of one autocommit statement."""
        with self._session() as conn:
            return conn.execute(statement, params).fetchall()

    def _changed(self, statement: str, params: Sequence[object]) -> int:
        """How many rows one autocommit statement changed."""
        with self._session() as conn:
            return conn.execute(statement, params).rowcount

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
        try:
            self._check_room()
            with self._transaction() as conn:
                eta = consumable_from if consumable_from > time.time() else 0.0
                first = sql.advance(conn, sql.ADVANCE_TAIL, count) - count + 1
                rows = ((queue, rank, first + i, eta, p) for i, p in enumerate(payloads))
                conn.executemany(sql.INSERT_TASK, rows)
        except BrokerFull as exc:
            self._refusals.refused(exc)
            raise
        if self._refusals.count:
            self._refusals.accepted()
        return count

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
            sql.make_due_ready(conn, queue, time.time())
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
            high, normal = local_registry.length_by_priority(conn, queue)
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

    # -- dead letters -----------------------------------------------------------------

    def dead_letter_many(
        self, queue: str, deliveries: Sequence[Delivery], reason: str, error: str = ""
    ) -> int:
        """See :meth:`sergeant.connector.Connector.dead_letter_many`."""
        held = sql.held_params(queue, deliveries)
        if not held:
            return 0
        return self._draining(lambda: self._dead_letter_now(held, reason, error))

    def _dead_letter_now(self, held: list[tuple[int, str, int]], reason: str, error: str) -> int:
        with self._transaction() as conn:
            now = time.time()
            rows = ((reason, error, now, *row) for row in held)
            moved = conn.executemany(sql.DEAD_LETTER, rows).rowcount
            conn.executemany(sql.ACK, held)
        return moved

    def dead_letters(self, queue: str, limit: int = 100) -> list[DeadLetter]:
        """See :meth:`sergeant.connector.Connector.dead_letters`."""
        rows = self._rows(sql.SELECT_DEAD, (queue, limit))
        return [DeadLetter(str(row[0]), *row[1:6]) for row in rows]

    def requeue_dead(self, queue: str, limit: int = 0) -> int:
        """See :meth:`sergeant.connector.Connector.requeue_dead`."""
        with self._transaction() as conn:
            rows = conn.execute(sql.SELECT_DEAD, (queue, limit if limit > 0 else -1)).fetchall()
            if rows:
                first = sql.advance(conn, sql.ADVANCE_TAIL, len(rows)) - len(rows) + 1
                revived = ((row[0], queue, first + i, row[1]) for i, row in enumerate(rows))
                conn.executemany(sql.REVIVE_TASK, revived)
                conn.executemany(sql.DELETE_DEAD, ((row[6],) for row in rows))
        return len(rows)

    def purge_dead(self, queue: str) -> int:
        """See :meth:`sergeant.connector.Connector.purge_dead`."""
        purged = self._draining(lambda: self._changed(sql.PURGE_DEAD, (queue,)))
        self._maintain()
        return purged

    def dead_count(self, queue: str) -> int:
        """See :meth:`sergeant.connector.Connector.dead_count`."""
        return int(self._rows(sql.COUNT_DEAD, (queue,))[0][0])

    # -- keys and locks -----------------------------------------------------------------

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

    # -- live workers (see ``local_registry``) -------------------------------------------

    def register_worker(self, worker_id: str, info: bytes, ttl_seconds: float) -> None:
        """See :meth:`sergeant.connector.Connector.register_worker`."""
        with self._session() as conn:
            local_registry.register(conn, worker_id, info, ttl_seconds)

    def unregister_worker(self, worker_id: str) -> bool:
        """See :meth:`sergeant.connector.Connector.unregister_worker`."""
        return self._draining(lambda: self._unregister_now(worker_id))

    def _unregister_now(self, worker_id: str) -> bool:
        with self._session() as conn:
            return local_registry.unregister(conn, worker_id)

    def workers(self) -> list[bytes]:
        """See :meth:`sergeant.connector.Connector.workers`."""
        with self._session() as conn:
            return local_registry.live(conn)

    # -- lifecycle ----------------------------------------------------------------------

    def ping(self) -> None:
        """See :meth:`sergeant.connector.Connector.ping`."""
        try:
            self._rows(sql.PING, ())
        except (BrokerUnavailable, BrokerFileReplaced):
            raise
        except ConnectorError as exc:
            raise BrokerUnavailable(
                f"SQLite broker file {self.file_path!r} does not answer ({exc})"
            ) from exc

    def close(self) -> None:
        """See :meth:`sergeant.connector.Connector.close`."""
        with self._mutex:
            self._closed = True
            self._drop_connection()
        _LIVE.discard(self)


class Lock(_connector.Lock):
    """A named lock stored in the ``locks`` table; see :class:`sergeant.connector.Lock`.

    Args:
        connector: the connector whose file holds the lock.
        name: the lock's name.
    """

    def __init__(self, connector: Connector, name: str) -> None:
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


def _file_identity(path: str) -> tuple[int, int] | None:
    """``(st_dev, st_ino)`` of the file at ``path``; None if there is none.

    Raises:
        OSError: the path cannot be looked at now (permissions, for example).
    """
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino


# -- fork safety --------------------------------------------------------------------------


def _before_fork() -> None:
    # Hold every mutex so no thread is mid-statement, and close the connections so
    # neither side inherits SQLite's per-process lock bookkeeping.
    _FORKING[:] = list(_LIVE)
    for connector in _FORKING:
        connector._mutex.acquire()
        connector._drop_connection()


def _after_fork() -> None:
    for connector in _FORKING:
        connector._mutex.release()
    _FORKING.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_before_fork, after_in_parent=_after_fork, after_in_child=_after_fork
    )
