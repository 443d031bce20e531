"""Room the SQLite broker file gives back to the disk once its items are gone.

Deleting rows leaves free pages inside the file, and a big transaction leaves a big
write-ahead log (``<file_path>-wal``); neither shrinks by itself. So:

* files are created with ``auto_vacuum = INCREMENTAL`` (``local_schema.set_up``), and
  :func:`reclaim` returns free pages beyond a kept amount with
  ``PRAGMA incremental_vacuum``, one bounded step per short transaction;
* connections set ``journal_size_limit``, so the log is cut to that size whenever it
  starts over, and :func:`trim_log` truncates a log left large by an idle file;
* a file made without auto-vacuum (by an earlier version) is converted once by
  :func:`convert` (``VACUUM``), when it is at most :data:`CONVERT_MAX_BYTES`; a
  process that finds it locked skips it, and a later open tries again.

The kept amount is the reserve's size (see ``reserve``): pushes go on reusing
those pages without growing the file, and while the reserve is spent the connector
gives nothing back at all, since the file's free pages and its log are then the only
room that draining and pushes have.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import typing
from collections.abc import Iterator

from sergeant.connector.sqlite import sql

__all__ = [
    "CONVERT_BUSY_SECONDS",
    "CONVERT_MAX_BYTES",
    "STEP_BYTES",
    "convert",
    "converted",
    "reclaim",
    "trim_log",
]

#: Largest file converted by an open: VACUUM rewrites it all under the write lock
#: (about a quarter of a second for 64 MiB on a local SSD), and other processes wait.
CONVERT_MAX_BYTES = 64 << 20
#: Seconds the conversion waits for the write lock before leaving it to a later open.
CONVERT_BUSY_SECONDS = 1.0
#: Most bytes given back by one transaction of :func:`reclaim`.
STEP_BYTES = 16 << 20
#: Milliseconds a step of :func:`reclaim` waits for the write lock before giving up.
_STEP_BUSY_MS = 100

#: ``PRAGMA auto_vacuum`` values.
AUTO_VACUUM_NONE, AUTO_VACUUM_INCREMENTAL = 0, 2

#: The one-line conversion of a bigger file, for the operator (the workers pause while
#: it runs, since VACUUM holds the write lock).
CONVERT_COMMAND = (
    'python -c "import sqlite3; c = sqlite3.connect({path!r}, isolation_level=None); '
    "c.execute('PRAGMA auto_vacuum = INCREMENTAL'); c.execute('VACUUM')\""
)


@contextlib.contextmanager
def _busy_timeout(conn: sqlite3.Connection, milliseconds: int, usual_ms: int) -> Iterator[None]:
    """Wait at most ``milliseconds`` for locks inside the block, then ``usual_ms`` again."""
    conn.execute(sql.PRAGMA_BUSY_TIMEOUT.format(milliseconds=milliseconds))
    try:
        yield
    finally:
        conn.execute(sql.PRAGMA_BUSY_TIMEOUT.format(milliseconds=usual_ms))


def _value(conn: sqlite3.Connection, statement: str) -> int:
    return int(conn.execute(statement).fetchall()[0][0])


def converted(conn: sqlite3.Connection) -> bool:
    """Whether the file uses incremental auto-vacuum (so :func:`reclaim` works on it)."""
    return _value(conn, sql.GET_AUTO_VACUUM) == AUTO_VACUUM_INCREMENTAL


def convert(
    conn: sqlite3.Connection, file_path: str, usual_busy_ms: int
) -> typing.Literal["done", "not needed", "too big", "busy", "failed"]:
    """Switch a file made without auto-vacuum to incremental auto-vacuum (``VACUUM``).

    VACUUM is one transaction: other processes keep reading their snapshot and wait
    for it like for any write; a failure (busy, a full disk) rolls it back whole.
    Files over :data:`CONVERT_MAX_BYTES` are left to the operator.
    """
    if _value(conn, sql.GET_AUTO_VACUUM) != AUTO_VACUUM_NONE:
        return "not needed"  # incremental already, or a user's own FULL
    size = _value(conn, sql.PAGE_COUNT) * _value(conn, sql.PAGE_SIZE)
    if size > CONVERT_MAX_BYTES:
        return "too big"
    try:
        with _busy_timeout(conn, int(CONVERT_BUSY_SECONDS * 1000), usual_busy_ms):
            conn.execute(sql.PRAGMA_AUTO_VACUUM)  # applied by the VACUUM that follows
            conn.execute(sql.VACUUM)
    except sqlite3.Error as exc:
        sql.rollback(conn)
        return "busy" if sql.is_busy(exc) else "failed"
    trim_log(conn, file_path, 0, usual_busy_ms)  # VACUUM wrote the whole file to the log
    return "done"


def reclaim(conn: sqlite3.Connection, keep_bytes: int, usual_busy_ms: int) -> int:
    """Give back free pages beyond ``keep_bytes`` once they exceed twice that.

    Each step is its own transaction of at most :data:`STEP_BYTES`, so the write lock
    is never held long; a busy lock ends the call (the next one goes on).

    Returns:
        The pages given back.
    """
    page_size = _value(conn, sql.PAGE_SIZE)
    keep = keep_bytes // page_size
    free = _value(conn, sql.FREELIST_COUNT)
    if free <= 2 * keep:
        return 0
    step = max(1, STEP_BYTES // page_size)
    given = 0
    with _busy_timeout(conn, _STEP_BUSY_MS, usual_busy_ms):
        while free > keep:
            try:
                # executescript runs the pragma to its end (execute does one page).
                conn.executescript(
                    f"{sql.BEGIN_IMMEDIATE}; "
                    f"{sql.INCREMENTAL_VACUUM.format(pages=min(step, free - keep))}; "
                    f"{sql.COMMIT};"
                )
            except sqlite3.Error:
                sql.rollback(conn)
                raise
            left = _value(conn, sql.FREELIST_COUNT)
            if left >= free:  # nothing moved: not incremental after all
                break
            given += free - left
            free = left
    return given


def trim_log(
    conn: sqlite3.Connection, file_path: str, limit_bytes: int, usual_busy_ms: int
) -> bool:
    """Truncate the write-ahead log if it is over ``limit_bytes``, without waiting.

    A checkpoint that truncates must wait for every reader: with other processes
    reading it is skipped (``journal_size_limit`` cuts the log when it starts over).

    Returns:
        Whether the log was truncated.
    """
    try:
        if os.path.getsize(f"{file_path}-wal") <= limit_bytes:
            return False
    except OSError:  # no log, or not a file of its own
        return False
    try:
        with _busy_timeout(conn, 0, usual_busy_ms):
            busy, _, _ = conn.execute(sql.CHECKPOINT_TRUNCATE).fetchall()[0]
    except sqlite3.Error:
        return False
    return not busy
