"""One process's connection to the SQLite broker file, and the rules every operation runs under.

:class:`Session` is the base of ``sergeant.connector.sqlite.Connector``: it opens the
file lazily per process (and again after a ``fork()``), notices when the file at the
path is no longer the one open, wraps sqlite3 errors, runs ``BEGIN IMMEDIATE``
transactions, drains through a full disk with the reserve (``reserve``) and
gives back room now and then (``space``). The operations themselves live in
``__init__`` (queues and leases), ``dead``, ``keys`` and ``registry``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
import typing
import weakref
from collections.abc import Iterator, Sequence

from sergeant.connector import base as _connector
from sergeant.connector.sqlite import reserve as local_reserve
from sergeant.connector.sqlite import schema, sql
from sergeant.connector.sqlite import space as local_space
from sergeant.errors import (
    BrokerFileReplaced,
    BrokerFull,
    BrokerUnavailable,
    ConnectionLost,
    ConnectorError,
)
from sergeant.logging import refusals

__all__ = [
    "DEFAULT_BUSY_TIMEOUT_SECONDS",
    "IDENTITY_CHECK_SECONDS",
    "KEEP_BYTES",
    "MAINTENANCE_SECONDS",
    "Session",
]

#: Seconds a statement waits for another process's write lock before failing.
DEFAULT_BUSY_TIMEOUT_SECONDS = 30.0
#: Seconds between two checks that the file at ``file_path`` is still the one open.
IDENTITY_CHECK_SECONDS = 1.0
#: Seconds between two looks of one connector at the file's free pages and its log.
MAINTENANCE_SECONDS = 1.0
#: Bytes of free pages the file keeps (and of log it keeps when the log starts over):
#: the reserve's size, so pushes reuse pages and the full-disk rules hold.
KEEP_BYTES = local_reserve.RESERVE_BYTES

_BUSY_TIMEOUT_MS = int(DEFAULT_BUSY_TIMEOUT_SECONDS * 1000)

# The connector's public module name, which operators filter logs on.
logger = logging.getLogger("sergeant.connector.local")

T = typing.TypeVar("T")

# Every open connector, so the fork hooks can close their connections.
_LIVE: weakref.WeakSet[Session] = weakref.WeakSet()
# Connectors whose mutex the fork hook holds while the fork happens.
_FORKING: list[Session] = []
# Connections inherited over a fork the hooks did not see (os.fork from C): touching
# them in the child is unsafe, and so is letting the garbage collector close them.
_ORPHANS: list[sqlite3.Connection] = []
# Files this process has said are too big to convert (said once per process).
_TOLD_TOO_BIG: set[str] = set()


class Session(_connector.Connector):
    """The connection of one process to one SQLite broker file; see the module docstring.

    Args:
        file_path: the SQLite file; it and its directory are created when missing.
    """

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
        self._refusals = refusals.Refusals(logger, f"SQLite broker file {self.file_path!r}")
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
            conn = schema.connect(self.file_path, DEFAULT_BUSY_TIMEOUT_SECONDS, KEEP_BYTES)
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

    def _pushing(self, step: typing.Callable[[], T]) -> T:
        """Run a step that adds to the file (it calls ``_check_room`` first), with room
        for the log (``_with_log_room``); the refusal log learns whether the broker
        refused it or, after refusals, took it again."""
        try:
            result = self._with_log_room(step)
        except BrokerFull as exc:
            self._refusals.refused(exc)
            raise
        if self._refusals.count:
            self._refusals.accepted()
        return result

    def _draining(self, step: typing.Callable[[], T]) -> T:
        """Run a step that hands out, settles or deletes what the file holds; when the
        disk is full, spend the reserve once and run it again (it never committed)."""
        try:
            return self._with_log_room(step)
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

    def _with_log_room(self, step: typing.Callable[[], T]) -> T:
        """Run a write step; when the disk is full, checkpoint the log once and run it
        again (it never committed).

        A full disk stops the log (the ``-wal`` file) from growing. A log whose frames
        are all in the file already starts over from its beginning at the next write,
        but SQLite checkpoints by itself only every 1,000 frames, so a log just short
        of that stays full and every write fails, acknowledgements too. A passive
        checkpoint writes into the file's own pages and grows nothing.
        """
        try:
            return step()
        except BrokerFull:
            if not self._checkpoint():
                raise
        return step()

    def _checkpoint(self) -> bool:
        """A passive checkpoint; True when it moved every frame of the log into the file."""
        try:
            with self._session() as conn:
                busy, frames, done = conn.execute(sql.CHECKPOINT_PASSIVE).fetchone()
        except ConnectorError:
            return False
        return bool(busy == 0 and frames > 0 and frames == done)

    def _check_room(self) -> None:
        """Refuse a push that would take the room kept for draining (see
        ``reserve``): the reserve is spent, the disk has no room to make it
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
