"""Schema and statements of the embedded SQLite broker (``sergeant.connector.local``).

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
  - ``deliveries``: times handed out; at lease time it is the fencing token.

* ``dead``: dead letters, oldest first by ``id``; ``task_id`` keeps the item's id.
* ``keys``: values with an optional expiry; expired rows are invisible to reads and
  swept by writes.
* ``locks``: named locks with an owner token and an expiry.
* ``counters``: the ``tail`` and ``head`` sequence counters.

Partial indexes (each query below repeats the index's WHERE terms literally, which
is what lets SQLite's planner use a partial index):

* ``tasks_ready (queue, priority, seq) WHERE deadline IS NULL AND eta = 0``: pop order.
* ``tasks_delayed (queue, eta) WHERE deadline IS NULL AND eta > 0``: due items.
* ``tasks_leased (queue, deadline) WHERE deadline IS NOT NULL``: expired leases.
"""

from __future__ import annotations

#: Bumped with every schema change; a migration in ``MIGRATIONS`` leads to it.
SCHEMA_VERSION = 1

#: ``priority`` column values.
PRIORITY_HIGH = 0
PRIORITY_NORMAL = 1

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

#: Statements taking a file at ``user_version`` N (the key) to N + 1.
MIGRATIONS: dict[int, tuple[str, ...]] = {0: CREATE_SCHEMA_V1}

# -- connection set-up ----------------------------------------------------------------

PRAGMA_JOURNAL_WAL = "PRAGMA journal_mode = WAL"
# NORMAL is safe in WAL: a power loss may drop the last commits, never corrupt the file.
PRAGMA_SYNCHRONOUS = "PRAGMA synchronous = NORMAL"
PRAGMA_BUSY_TIMEOUT = "PRAGMA busy_timeout = {milliseconds:d}"
GET_USER_VERSION = "PRAGMA user_version"
SET_USER_VERSION = "PRAGMA user_version = {version:d}"
BEGIN_IMMEDIATE = "BEGIN IMMEDIATE"
COMMIT = "COMMIT"
ROLLBACK = "ROLLBACK"
PING = "SELECT 1"

# -- counters -------------------------------------------------------------------------

# Both return the counter's new value; the caller uses the ``count`` values ending
# (tail) or starting (head) there.
ADVANCE_TAIL = "UPDATE counters SET value = value + ? WHERE name = 'tail' RETURNING value"
ADVANCE_HEAD = "UPDATE counters SET value = value - ? WHERE name = 'head' RETURNING value"

# -- ready and delayed items ----------------------------------------------------------

INSERT_TASK = "INSERT INTO tasks (queue, priority, seq, eta, payload) VALUES (?, ?, ?, ?, ?)"

# Cheap read before taking the write lock: is anything ready, and when is the next
# delayed item due? (queue, queue)
PEEK_READY = """SELECT
    EXISTS (SELECT 1 FROM tasks WHERE queue = ? AND deadline IS NULL AND eta = 0),
    (SELECT MIN(eta) FROM tasks WHERE queue = ? AND deadline IS NULL AND eta > 0)"""

# (queue, now)
SELECT_DUE = """SELECT id FROM tasks
    WHERE queue = ? AND deadline IS NULL AND eta > 0 AND eta <= ?
    ORDER BY eta, seq"""
# (seq, id)
MAKE_READY = "UPDATE tasks SET eta = 0, seq = ? WHERE id = ?"

# The pop order, shared by pop and lease: (queue, count).
_SELECT_NEXT = """SELECT id FROM tasks
    WHERE queue = ? AND deadline IS NULL AND eta = 0
    ORDER BY priority, seq LIMIT ?"""

# RETURNING order is unspecified: callers sort by (priority, seq).
# (queue, count)
POP_READY = f"""DELETE FROM tasks WHERE id IN ({_SELECT_NEXT})
    RETURNING priority, seq, payload"""
# (deadline, owner, queue, count)
LEASE_READY = f"""UPDATE tasks SET deadline = ?, owner = ?, deliveries = deliveries + 1
    WHERE id IN ({_SELECT_NEXT})
    RETURNING priority, seq, id, payload, deliveries"""

# (queue, now)
COUNT_READY = """SELECT
    (SELECT COUNT(*) FROM tasks WHERE queue = ? AND deadline IS NULL AND eta = 0)
    + (SELECT COUNT(*) FROM tasks WHERE queue = ? AND deadline IS NULL AND eta > 0 AND eta <= ?)"""
# Ready and delayed, split so that each half uses its partial index: (queue, queue).
COUNT_WAITING = """SELECT
    (SELECT COUNT(*) FROM tasks WHERE queue = ? AND deadline IS NULL AND eta = 0)
    + (SELECT COUNT(*) FROM tasks WHERE queue = ? AND deadline IS NULL AND eta > 0)"""
PURGE_WAITING = """DELETE FROM tasks WHERE id IN (
    SELECT id FROM tasks WHERE queue = ? AND deadline IS NULL AND eta = 0
    UNION ALL SELECT id FROM tasks WHERE queue = ? AND deadline IS NULL AND eta > 0)"""

# -- leases: every statement checks the fencing token ---------------------------------

_HELD = "id = ? AND queue = ? AND deadline IS NOT NULL AND deliveries = ?"
# (id, queue, token)
ACK = f"DELETE FROM tasks WHERE {_HELD}"
# (seq, id, queue, token)
RELEASE = f"""UPDATE tasks
    SET deadline = NULL, owner = NULL, deliveries = deliveries - 1, seq = ?
    WHERE {_HELD}"""
# (deadline, id, queue, token)
EXTEND = f"UPDATE tasks SET deadline = ? WHERE {_HELD}"
# (reason, error, now, id, queue, token)
DEAD_LETTER = f"""INSERT INTO dead (queue, task_id, payload, reason, error, deliveries, dead_at)
    SELECT queue, id, payload, ?, ?, deliveries, ? FROM tasks WHERE {_HELD}"""
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
BURY_EXPIRED = """INSERT INTO dead (queue, task_id, payload, reason, error, deliveries, dead_at)
    SELECT queue, id, payload, 'worker died', '', deliveries, ? FROM tasks WHERE id = ?"""
# (id)
DELETE_TASK = "DELETE FROM tasks WHERE id = ?"

# -- dead letters ---------------------------------------------------------------------

# (queue, limit); a negative limit means no limit.
SELECT_DEAD = """SELECT id, task_id, payload, reason, error, deliveries, dead_at FROM dead
    WHERE queue = ? ORDER BY id LIMIT ?"""
# (id, queue, seq, payload): back under the item's own id, so item ids stay stable.
REVIVE_TASK = """INSERT INTO tasks (id, queue, priority, seq, eta, payload, deliveries)
    VALUES (?, ?, 1, ?, 0, ?, 0)"""
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
