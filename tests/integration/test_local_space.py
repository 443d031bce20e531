"""The SQLite broker file gives its free room back: incremental auto-vacuum, a bounded
write-ahead log, and the one-time conversion of files made without auto-vacuum."""

from __future__ import annotations

import logging
import multiprocessing
import os
import re
import shlex
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from sergeant.connector.sqlite import Connector, space
from sergeant.connector.sqlite.reserve import RESERVE_BYTES

OPERATIONS_DOC = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
DOCUMENTED_PATH = "/var/lib/myapp/queue.sqlite3"

QUEUE = "jobs"
LEASE = 300.0
BIG = 50 << 20
PROCESS_TIMEOUT = 120.0


@pytest.fixture
def path(tmp_path: Path) -> str:
    """A broker file that does not exist yet."""
    return str(tmp_path / "broker.sqlite3")


def on_disk(path: str) -> int:
    """Bytes of the broker file and its write-ahead log."""
    return sum(os.path.getsize(p) for p in (path, f"{path}-wal") if os.path.exists(p))


def pragma(path: str, name: str) -> int:
    raw = sqlite3.connect(path)
    try:
        return int(raw.execute(f"PRAGMA {name}").fetchone()[0])
    finally:
        raw.close()


def free_bytes(path: str) -> int:
    return pragma(path, "freelist_count") * pragma(path, "page_size")


def make_old_format(path: str, tasks: int) -> None:
    """A file as earlier versions left it: the same schema, without auto-vacuum."""
    connector = Connector(path)
    connector.push_many(QUEUE, [f"task-{i}".encode() for i in range(tasks)])
    held = connector.lease_many(QUEUE, 1, "w", LEASE)
    connector.dead_letter_many(QUEUE, held, "max retries", "boom")
    connector.key_set("result", b"42")
    connector.close()
    raw = sqlite3.connect(path, isolation_level=None)
    try:
        raw.execute("PRAGMA auto_vacuum = NONE")
        raw.execute("VACUUM")
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        raw.close()
    assert pragma(path, "auto_vacuum") == 0


def assert_intact(connector: Connector, tasks: int) -> None:
    """Every task of :func:`make_old_format` is there, in order, and so is the rest."""
    assert connector.dead_count(QUEUE) == 1
    assert connector.key_get("result") == b"42"
    got = connector.lease_many(QUEUE, tasks, "w", LEASE)
    assert [d.payload for d in got] == [f"task-{i}".encode() for i in range(1, tasks)]
    assert connector.ack_many(QUEUE, got) == tasks - 1


# -- a big task's room comes back -------------------------------------------------------


@pytest.mark.parametrize("consume", ["lease and ack", "pop"])
def test_a_consumed_big_task_gives_its_room_back(path: str, consume: str) -> None:
    """One 50 MB task pushed and consumed: the file and its log end well below their
    peak (a lease rewrites the row, so the peak is about twice the task)."""
    connector = Connector(path)
    try:
        connector.push_many(QUEUE, [os.urandom(BIG)])
        if consume == "pop":
            assert len(connector.pop_many(QUEUE, 1)) == 1
        else:
            held = connector.lease_many(QUEUE, 1, "w", LEASE)
            assert on_disk(path) > 2 * BIG  # the peak this test is about
            assert connector.ack_many(QUEUE, held) == 1
        assert on_disk(path) < 30 << 20
        assert RESERVE_BYTES <= free_bytes(path) <= 2 * RESERVE_BYTES  # kept for pushes
        connector.push_many(QUEUE, [b"small"])  # still a working broker
        assert connector.pop_many(QUEUE, 1) == [b"small"]
    finally:
        connector.close()


def test_an_idle_worker_gives_the_room_back(path: str) -> None:
    """Pages freed by another program (here a plain delete) are given back by a worker
    polling an empty queue, with no acknowledgement of its own."""
    idle = Connector(path)
    try:
        idle.push_many(QUEUE, [os.urandom(BIG)])  # a push gives nothing back
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("DELETE FROM tasks")
        other.close()
        assert on_disk(path) > BIG
        give_up = time.monotonic() + 30
        while on_disk(path) >= 30 << 20 and time.monotonic() < give_up:
            assert idle.lease_many(QUEUE, 1, "idle", LEASE, block_seconds=0.5) == []
        assert on_disk(path) < 30 << 20
    finally:
        idle.close()


def test_free_pages_stay_while_the_reserve_is_spent(path: str) -> None:
    """While the reserve is spent (a full disk), the file keeps its free pages: they
    are the only room pushes may use, and giving them to the disk could let another
    program take the room that draining needs."""
    connector = Connector(path)
    try:
        connector.push_many(QUEUE, [os.urandom(BIG)])
        held = connector.lease_many(QUEUE, 1, "w", LEASE)
        os.unlink(f"{path}-reserve")  # what a draining write does on a full disk
        assert connector.ack_many(QUEUE, held) == 1
        assert free_bytes(path) > BIG
    finally:
        connector.close()


def test_a_new_file_uses_incremental_auto_vacuum(path: str) -> None:
    connector = Connector(path)
    connector.ping()
    connector.close()
    assert pragma(path, "auto_vacuum") == 2  # INCREMENTAL
    assert pragma(path, "journal_size_limit") == -1  # a per-connection setting
    connector = Connector(path)
    try:
        with connector._session() as conn:
            assert conn.execute("PRAGMA journal_size_limit").fetchone()[0] == RESERVE_BYTES
    finally:
        connector.close()


def test_opening_a_file_writes_nothing(path: str) -> None:
    """Opening an existing file takes no write lock (setting auto-vacuum again would be
    a write): it opens while another connection holds the lock, and on a full disk."""
    connector = Connector(path)
    connector.push_many(QUEUE, [b"x"])
    connector.close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        reader = Connector(path)
        started = time.monotonic()
        assert reader.length(QUEUE) == 1
        assert time.monotonic() - started < 10  # not the 30 s busy timeout
        reader.close()
    finally:
        holder.execute("ROLLBACK")
        holder.close()


# -- files made without auto-vacuum -----------------------------------------------------


def test_an_old_format_file_is_converted_and_keeps_its_tasks(path: str) -> None:
    make_old_format(path, 1000)
    version = pragma(path, "user_version")
    connector = Connector(path)
    try:
        connector.ping()  # opens the file
        assert pragma(path, "auto_vacuum") == 2
        assert pragma(path, "user_version") == version
        assert_intact(connector, 1000)
    finally:
        connector.close()


def test_a_version_1_file_is_migrated_and_converted(path: str) -> None:
    """A file of schema version 1 (no ``workers`` table), made without auto-vacuum."""
    make_old_format(path, 10)
    raw = sqlite3.connect(path, isolation_level=None)
    for statement in (  # what versions 2 to 5 added
        "DROP TABLE workers",
        "DROP INDEX tasks_unique",
        "ALTER TABLE tasks DROP COLUMN unique_key",
        "ALTER TABLE tasks DROP COLUMN task_id",
        "DROP TABLE flow_nodes",
        "DROP TABLE flow_values",
        "DROP TABLE once_keys",
        "DROP INDEX tasks_group_ready",
        "DROP INDEX tasks_ready",
        "DROP INDEX tasks_group_leased",
        "ALTER TABLE tasks DROP COLUMN group_key",
        "ALTER TABLE dead DROP COLUMN group_key",
        "DROP TABLE group_ring",
        "DROP TABLE group_starts",
        "DROP TABLE starts",
        "CREATE INDEX tasks_ready ON tasks (queue, priority, seq)"
        " WHERE deadline IS NULL AND eta = 0",
    ):
        raw.execute(statement)
    raw.execute("PRAGMA user_version = 1")
    raw.close()
    connector = Connector(path)
    try:
        connector.ping()  # opens the file
        assert pragma(path, "auto_vacuum") == 2
        connector.register_worker("w", b"{}", 60)
        assert connector.workers() == [b"{}"]
        assert connector.take_starts("q", 2, 60.0, 3)[0] == 2  # the version 7 table
        assert_intact(connector, 10)
    finally:
        connector.close()


def test_conversion_waits_for_no_lock_held_too_long(path: str) -> None:
    """Another connection holds the write lock: the connector opens and works without
    converting, and converts on a later open."""
    make_old_format(path, 10)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    connector = Connector(path)
    try:
        started = time.monotonic()
        assert connector.length(QUEUE) == 9
        assert time.monotonic() - started < 10  # bounded: not the 30 s busy timeout
        assert pragma(path, "auto_vacuum") == 0
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        connector.close()
    connector = Connector(path)
    try:
        connector.ping()
        assert pragma(path, "auto_vacuum") == 2
        assert_intact(connector, 10)
    finally:
        connector.close()


def test_a_big_old_file_is_left_alone_and_says_how(
    path: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    make_old_format(path, 10)
    monkeypatch.setattr(space, "CONVERT_MAX_BYTES", 4096)
    caplog.set_level(logging.INFO, logger="sergeant.connector.local")
    for _ in range(2):
        connector = Connector(path)
        connector.ping()
        connector.close()
    assert pragma(path, "auto_vacuum") == 0
    told = [r for r in caplog.records if "VACUUM" in r.getMessage()]
    assert len(told) == 1  # once per process
    assert path in told[0].getMessage()
    assert "auto_vacuum = INCREMENTAL" in told[0].getMessage()


def test_the_documented_conversion_of_a_big_file_works(path: str) -> None:
    """The one-liner docs/operations.md gives for files too big to convert on open,
    run as written (on this test's file), while a connector has the file open."""
    make_old_format(path, 100)
    blocks = re.findall(r"```bash\n(.*?)```", OPERATIONS_DOC.read_text(), re.S)
    (command,) = [b.strip() for b in blocks if "auto_vacuum = INCREMENTAL" in b]
    argv = shlex.split(command.replace(DOCUMENTED_PATH, path))
    assert argv[0] == "python"
    connector = Connector(path)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(space, "CONVERT_MAX_BYTES", 0)  # as if it were big
            connector.ping()
        assert pragma(path, "auto_vacuum") == 0
        subprocess.run([sys.executable, *argv[1:]], check=True, timeout=PROCESS_TIMEOUT)
        assert pragma(path, "auto_vacuum") == 2
        assert_intact(connector, 100)
    finally:
        connector.close()


# -- conversion under another process ---------------------------------------------------


def _keep_busy(path: str, ready: Any, stop: Any, out: Any) -> None:
    """Push, lease and acknowledge in a loop on a file opened before the conversion."""
    errors: list[str] = []
    done = 0
    connector = Connector(path)
    try:
        connector.ping()
        ready.set()
        while not stop.is_set() and done < 1_000_000:
            connector.push_many("other", [b"x" * 2000] * 20)
            held = connector.lease_many("other", 20, "busy", LEASE)
            done += connector.ack_many("other", held)
    except BaseException as exc:
        errors.append(repr(exc))
    finally:
        connector.close()
    out.put((done, errors))


def test_conversion_while_another_process_uses_the_file(path: str) -> None:
    make_old_format(path, 2000)
    ctx: Any = multiprocessing.get_context("spawn")
    ready, stop, out = ctx.Event(), ctx.Event(), ctx.Queue()
    child = ctx.Process(target=_keep_busy, args=(path, ready, stop, out))
    child.start()
    try:
        assert ready.wait(PROCESS_TIMEOUT)
        connector = Connector(path)
        try:
            connector.ping()
            assert pragma(path, "auto_vacuum") == 2
            assert_intact(connector, 2000)
        finally:
            connector.close()
        stop.set()
        done, errors = out.get(timeout=PROCESS_TIMEOUT)
    finally:
        stop.set()
        child.join(PROCESS_TIMEOUT)
        if child.is_alive():
            child.kill()
    assert errors == []
    assert done > 0
    assert child.exitcode == 0
