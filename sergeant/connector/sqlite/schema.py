"""The SQLite broker file's schema, its migrations and the set-up of a new connection.

Layout (schema version :data:`SCHEMA_VERSION`, stored in ``PRAGMA user_version``):

* ``tasks``: one row per ready, delayed or leased item.

  - ``priority``: 0 for ``HIGH``, 1 for ``NORMAL``.
  - ``seq``: the order within a priority. Pushes and due delayed items take the next
    value of the ``tail`` counter (ascending); released and reclaimed items take
    values below the ``head`` counter (descending, always negative), so they sort
    ahead of everything else of their priority.
  - ``eta``: 0 for ready items; the Unix seconds they are due for delayed items.
    Due items are "moved" (``eta = 0`` and a tail ``seq``) by the pop or lease that
    sees them, in the same transaction, so they join the tail when they become due.
  - ``deadline``: NULL unless leased; then the Unix seconds the lease runs out.
  - ``deliveries``: times handed out.
  - The fencing token of a lease is the item's ``seq`` when leased: every entry into
    ready (push, due, release, reclaim, requeue from dead) takes a fresh ``seq`` from
    one of the two counters, which never go back, so a token never repeats.

* ``dead``: dead letters, oldest first by ``id``; ``task_id`` keeps the item's id.
* ``keys``: values with an optional expiry; expired rows are invisible to reads and
  swept by writes.
* ``locks``: named locks with an owner token and an expiry.
* ``counters``: the ``tail`` and ``head`` sequence counters.
* ``workers`` (version 2): live-worker heartbeats, ``id``, ``info`` and
  ``expires_at`` (Unix seconds); expired rows are invisible to reads and swept by
  writes (see ``registry``).
* ``tasks.unique_key``, ``tasks.task_id`` (version 3): the key a row holds while it
  is in the table (``push_unique``), and the task id a push of the same key gets
  back; NULL for other rows. A row leaves the table when it is settled (acknowledged,
  popped, dead-lettered, purged), which frees its key; requeued dead items come
  back without one.
* ``flow_nodes`` (version 4): held workflow steps (see ``flows``), one row per
  ``(queue, flow_id, node)``: the held ``payload`` (emptied once pushed), ``high``
  (1 for ``HIGH``), ``needed`` (0 while only members were recorded), ``released``
  (1 once complete) and ``expires_at`` (Unix seconds). Expired rows are invisible
  to reads and swept by writes.
* ``flow_values`` (version 4): one row per recorded member of a node, with its
  ``value``; they live and go with their node's row.
* ``once_keys`` (version 6): the marks of ``push_once``, one row per ``(queue,
  once_key)`` with its ``expires_at`` (Unix seconds); an expired row is replaced by
  the next push of its key, and each push sweeps a few others (``once_keys_expiry``).
* ``starts`` (version 7): start permits (see ``permits``), one row per grant:
  ``key``, ``at`` (Unix seconds) and ``count``; rows older than the key's window are
  deleted by its next grant. Index ``starts_key (key, at)``.

Partial indexes (each query in ``sql`` repeats the index's WHERE terms
literally, which is what lets SQLite's planner use a partial index):

* ``tasks_ready (queue, priority, seq) WHERE deadline IS NULL AND eta = 0``: pop order
  (version 5 adds ``AND group_key IS NULL``: ungrouped rows only).
* ``tasks_delayed (queue, eta) WHERE deadline IS NULL AND eta > 0``: due items.
* ``tasks_leased (queue, deadline) WHERE deadline IS NOT NULL``: expired leases.
* ``tasks_unique`` (version 3), UNIQUE ``(queue, unique_key) WHERE unique_key IS NOT
  NULL``: one holder per key and queue.

``flow_nodes_expiry (expires_at)`` (version 4) finds the nodes to sweep.

Version 5, grouped items (see ``groups``):

* ``tasks.group_key``, ``dead.group_key``: the group of a row pushed with
  ``push_grouped``, kept through leases, releases, reclaims and the dead letter (so
  ``requeue_dead`` brings it back into its group); NULL for other rows.
* ``tasks_group_ready (queue, group_key, priority, seq) WHERE deadline IS NULL AND
  eta = 0 AND group_key IS NOT NULL``: the ring of groups with ready items and each
  group's order; ``tasks_group_leased (queue, group_key) WHERE deadline IS NOT NULL
  AND group_key IS NOT NULL``: a group's leased count, exact because it is counted.
  Ungrouped rows match neither, so they cost these indexes nothing; ``tasks_ready``
  holds ungrouped rows only, so a query over all ready rows reads both indexes.
* ``group_ring``: per queue, the ring member the last lease took from (``last``,
  ``''`` for the ungrouped items).
* ``group_starts``: one row per lease of a grouped item while a rate limit is set
  (``queue``, ``group_key``, ``at``), swept once out of the window.
"""

from __future__ import annotations

import os
import sqlite3
import time

from sergeant.connector.sqlite.sql import (
    BEGIN_IMMEDIATE,
    COMMIT,
    PAGE_COUNT,
    PRAGMA_AUTO_VACUUM,
    PRAGMA_BUSY_TIMEOUT,
    PRAGMA_JOURNAL_SIZE_LIMIT,
    is_busy,
    rollback,
)
from sergeant.errors import BrokerUnavailable

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "connect", "set_up"]

#: Bumped with every schema change; a migration in ``MIGRATIONS`` leads to it.
SCHEMA_VERSION = 7


CREATE_SCHEMA_V1 = (
    """CREATE TABLE IF NOT EXISTS tasks (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        queue TEXT NOT NULL,
        priority INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        eta REAL NOT NULL,
        payload BLOB NOT NULL,
        deadline REAL,
        owner TEXT,
        deliveries INTEGER NOT NULL DEFAULT 0
    )""",
    """CREATE INDEX IF NOT EXISTS tasks_ready ON tasks (queue, priority, seq)
        WHERE deadline IS NULL AND eta = 0""",
    """CREATE INDEX IF NOT EXISTS tasks_delayed ON tasks (queue, eta)
        WHERE deadline IS NULL AND eta > 0""",
    """CREATE INDEX IF NOT EXISTS tasks_leased ON tasks (queue, deadline)
        WHERE deadline IS NOT NULL""",
    """CREATE TABLE IF NOT EXISTS dead (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        queue TEXT NOT NULL,
        task_id INTEGER NOT NULL,
        payload BLOB NOT NULL,
        reason TEXT NOT NULL,
        error TEXT NOT NULL,
        deliveries INTEGER NOT NULL,
        dead_at REAL NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS dead_queue ON dead (queue, id)",
    """CREATE TABLE IF NOT EXISTS keys (
        key TEXT PRIMARY KEY,
        value BLOB NOT NULL,
        expires_at REAL
    )""",
    "CREATE INDEX IF NOT EXISTS keys_expiry ON keys (expires_at) WHERE expires_at IS NOT NULL",
    """CREATE TABLE IF NOT EXISTS locks (
        name TEXT PRIMARY KEY,
        token TEXT NOT NULL,
        expires_at REAL NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS counters (
        name TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    )""",
    "INSERT OR IGNORE INTO counters (name, value) VALUES ('tail', 0), ('head', 0)",
)

# Version 2: the live-worker registry (see ``registry``).
CREATE_SCHEMA_V2 = (
    """CREATE TABLE IF NOT EXISTS workers (
        id TEXT PRIMARY KEY,
        info BLOB NOT NULL,
        expires_at REAL NOT NULL
    )""",
)

# Version 3: unique pushes (see ``unique``). Existing rows get NULLs: they hold no key.
CREATE_SCHEMA_V3 = (
    "ALTER TABLE tasks ADD COLUMN unique_key TEXT",
    "ALTER TABLE tasks ADD COLUMN task_id TEXT",
    """CREATE UNIQUE INDEX IF NOT EXISTS tasks_unique ON tasks (queue, unique_key)
        WHERE unique_key IS NOT NULL""",
)

# Version 4: held workflow steps (see ``flows``).
CREATE_SCHEMA_V4 = (
    """CREATE TABLE IF NOT EXISTS flow_nodes (
        queue TEXT NOT NULL,
        flow_id TEXT NOT NULL,
        node INTEGER NOT NULL,
        payload BLOB NOT NULL,
        high INTEGER NOT NULL,
        needed INTEGER NOT NULL,
        released INTEGER NOT NULL,
        expires_at REAL NOT NULL,
        PRIMARY KEY (queue, flow_id, node)
    )""",
    "CREATE INDEX IF NOT EXISTS flow_nodes_expiry ON flow_nodes (expires_at)",
    """CREATE TABLE IF NOT EXISTS flow_values (
        queue TEXT NOT NULL,
        flow_id TEXT NOT NULL,
        node INTEGER NOT NULL,
        member INTEGER NOT NULL,
        value BLOB NOT NULL,
        PRIMARY KEY (queue, flow_id, node, member)
    )""",
)

# Version 5: grouped items (see ``groups``). Existing rows get NULLs: ungrouped.
CREATE_SCHEMA_V5 = (
    "ALTER TABLE tasks ADD COLUMN group_key TEXT",
    "ALTER TABLE dead ADD COLUMN group_key TEXT",
    # Ungrouped ready rows alone, so that the ring finds the next one in one seek.
    "DROP INDEX IF EXISTS tasks_ready",
    """CREATE INDEX tasks_ready ON tasks (queue, priority, seq)
        WHERE deadline IS NULL AND eta = 0 AND group_key IS NULL""",
    """CREATE INDEX IF NOT EXISTS tasks_group_ready ON tasks (queue, group_key, priority, seq)
        WHERE deadline IS NULL AND eta = 0 AND group_key IS NOT NULL""",
    """CREATE INDEX IF NOT EXISTS tasks_group_leased ON tasks (queue, group_key)
        WHERE deadline IS NOT NULL AND group_key IS NOT NULL""",
    """CREATE TABLE IF NOT EXISTS group_ring (
        queue TEXT PRIMARY KEY,
        last TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS group_starts (
        queue TEXT NOT NULL,
        group_key TEXT NOT NULL,
        at REAL NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS group_starts_key ON group_starts (queue, group_key, at)",
    "CREATE INDEX IF NOT EXISTS group_starts_at ON group_starts (queue, at)",
)

# Version 6: once pushes (see ``once``).
CREATE_SCHEMA_V6 = (
    """CREATE TABLE IF NOT EXISTS once_keys (
        queue TEXT NOT NULL,
        once_key TEXT NOT NULL,
        expires_at REAL NOT NULL,
        PRIMARY KEY (queue, once_key)
    )""",
    "CREATE INDEX IF NOT EXISTS once_keys_expiry ON once_keys (expires_at)",
)

# Version 7: start permits of rate limits (see ``permits``).
CREATE_SCHEMA_V7 = (
    """CREATE TABLE IF NOT EXISTS starts (
        key TEXT NOT NULL,
        at REAL NOT NULL,
        count INTEGER NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS starts_key ON starts (key, at)",
)

#: Statements taking a file at ``user_version`` N (the key) to N + 1.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    0: CREATE_SCHEMA_V1,
    1: CREATE_SCHEMA_V2,
    2: CREATE_SCHEMA_V3,
    3: CREATE_SCHEMA_V4,
    4: CREATE_SCHEMA_V5,
    5: CREATE_SCHEMA_V6,
    6: CREATE_SCHEMA_V7,
}

# -- connection set-up ----------------------------------------------------------------

GET_JOURNAL_MODE = "PRAGMA journal_mode"
PRAGMA_JOURNAL_WAL = "PRAGMA journal_mode = WAL"
# NORMAL is safe in WAL: a power loss may drop the last commits, never corrupt the file.
PRAGMA_SYNCHRONOUS = "PRAGMA synchronous = NORMAL"
GET_USER_VERSION = "PRAGMA user_version"
SET_USER_VERSION = "PRAGMA user_version = {version:d}"


def connect(
    file_path: str, busy_timeout_seconds: float, journal_size_limit: int
) -> sqlite3.Connection:
    """Open ``file_path`` (creating its directory), configured and at :data:`SCHEMA_VERSION`.

    Raises:
        OSError: the directory cannot be created.
        BrokerUnavailable: the file cannot use WAL, or has a newer schema.
        sqlite3.Error: from SQLite; busy only after ``busy_timeout_seconds``.
    """
    os.makedirs(os.path.dirname(os.path.abspath(file_path)), exist_ok=True)
    conn = sqlite3.connect(
        file_path,
        timeout=busy_timeout_seconds,
        isolation_level=None,  # the connector issues BEGIN IMMEDIATE / COMMIT itself
        check_same_thread=False,  # the connector guards it with a mutex instead
    )
    # Processes opening a new file together race to switch it to WAL, and SQLite
    # reports the losers as busy at once, without waiting: retry them.
    give_up = time.monotonic() + busy_timeout_seconds
    pause = 0.001
    while True:
        try:
            set_up(conn, int(busy_timeout_seconds * 1000), file_path, journal_size_limit)
            return conn
        except sqlite3.Error as exc:
            if not is_busy(exc) or time.monotonic() >= give_up:
                conn.close()
                raise
        except BaseException:
            conn.close()
            raise
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


def set_up(
    conn: sqlite3.Connection, busy_timeout_ms: int, file_path: str, journal_size_limit: int
) -> None:
    """Configure a new connection and bring the file to :data:`SCHEMA_VERSION`.

    A new file gets incremental auto-vacuum (see ``space``).

    Raises:
        BrokerUnavailable: the file cannot use WAL, or has a newer schema.
        sqlite3.Error: from SQLite, such as busy while another process sets it up.
    """
    conn.execute(PRAGMA_BUSY_TIMEOUT.format(milliseconds=busy_timeout_ms))
    (pages,) = conn.execute(PAGE_COUNT).fetchall()[0]
    if pages == 0:  # a new file
        conn.execute(PRAGMA_AUTO_VACUUM)
    (mode,) = conn.execute(GET_JOURNAL_MODE).fetchall()[0]
    if mode != "wal":  # switching needs an exclusive lock: only when needed
        (mode,) = conn.execute(PRAGMA_JOURNAL_WAL).fetchall()[0]
    if str(mode).lower() not in ("wal", "memory"):
        raise BrokerUnavailable(
            f"SQLite broker file {file_path!r} cannot use write-ahead logging "
            f"(journal_mode is {mode!r}); put it on a local disk"
        )
    conn.execute(PRAGMA_SYNCHRONOUS)
    conn.execute(PRAGMA_JOURNAL_SIZE_LIMIT.format(size=journal_size_limit))
    (version,) = conn.execute(GET_USER_VERSION).fetchall()[0]
    if version != SCHEMA_VERSION:
        _migrate(conn, file_path)


def _migrate(conn: sqlite3.Connection, file_path: str) -> None:
    conn.execute(BEGIN_IMMEDIATE)
    try:
        # Read again under the write lock: another process may have migrated.
        (version,) = conn.execute(GET_USER_VERSION).fetchall()[0]
        if version > SCHEMA_VERSION:
            raise BrokerUnavailable(
                f"SQLite broker file {file_path!r} has schema version {version}, "
                f"newer than this Sergeant's {SCHEMA_VERSION}; upgrade Sergeant"
            )
        for step in range(version, SCHEMA_VERSION):
            for statement in MIGRATIONS[step]:
                conn.execute(statement)
        conn.execute(SET_USER_VERSION.format(version=SCHEMA_VERSION))
        conn.execute(COMMIT)
    except BaseException:
        rollback(conn)
        raise
