"""The SQLite ("sqlite") connector beyond the shared contract: processes, files, schema."""

from __future__ import annotations

import multiprocessing
import os
import queue
import sqlite3
import time
from pathlib import Path
from typing import Any, Literal

import pytest

from sergeant.connector import sqlite
from sergeant.connector.sqlite import Connector, session, sql
from sergeant.connector.sqlite import schema as local_schema
from sergeant.errors import BrokerFileReplaced, BrokerUnavailable, ConnectionLost, ConnectorError
from tests.servers import wait_until

QUEUE = "jobs"
LEASE = 300.0
PROCESS_TIMEOUT = 120.0


@pytest.fixture
def path(tmp_path: Path) -> str:
    """A broker file that does not exist yet."""
    return str(tmp_path / "broker.sqlite3")


# -- helpers run in child processes (module level, so 'spawn' can import them) ---------


def _produce(path: str, worker: int, count: int, start: Any, out: Any) -> None:
    start.wait(PROCESS_TIMEOUT)
    connector = Connector(path)
    for first in range(0, count, 10):
        batch = [f"p{worker}-{i}".encode() for i in range(first, min(first + 10, count))]
        connector.push_many(QUEUE, batch)
    connector.key_set(f"done-{worker}", b"1")
    connector.close()
    out.put(("producer", worker, []))


def _consume(path: str, worker: int, producers: int, start: Any, out: Any) -> None:
    start.wait(PROCESS_TIMEOUT)
    connector = Connector(path)
    got: list[bytes] = []
    give_up = time.monotonic() + PROCESS_TIMEOUT
    while time.monotonic() < give_up:
        done = all(connector.key_get(f"done-{p}") for p in range(producers))
        batch = connector.lease_many(QUEUE, 20, f"w{worker}", LEASE, block_seconds=0.05)
        got.extend(d.payload for d in batch)
        connector.ack_many(QUEUE, batch)
        if done and not batch:
            break
    connector.close()
    out.put(("consumer", worker, got))


def _use_inherited(connector: Connector, out: Any) -> None:
    connector.push(QUEUE, b"from-child")
    leased = connector.lease_many(QUEUE, 10, "child", LEASE)
    connector.ack_many(QUEUE, leased)
    out.put(sorted(d.payload for d in leased))


def _run_processes(
    context: Literal["spawn", "fork"], targets: list[tuple[Any, tuple[Any, ...]]]
) -> list[Any]:
    ctx: Any = multiprocessing.get_context(context)
    out = ctx.Queue()
    processes = [ctx.Process(target=target, args=(*args, out)) for target, args in targets]
    for process in processes:
        process.start()
    results: list[Any] = []
    give_up = time.monotonic() + PROCESS_TIMEOUT
    try:
        while len(results) < len(processes):
            try:
                results.append(out.get(timeout=0.2))
            except queue.Empty:
                failed = [p.exitcode for p in processes if p.exitcode not in (None, 0)]
                assert not failed, f"a child process failed: exit codes {failed}"
                assert time.monotonic() < give_up, "the child processes did not finish"
    finally:
        for process in processes:
            process.join(timeout=PROCESS_TIMEOUT)
            if process.is_alive():
                process.kill()
    assert [p.exitcode for p in processes] == [0] * len(processes)
    return results


# -- processes ----------------------------------------------------------------------


@pytest.mark.slow
def test_processes_sharing_a_fresh_file_get_every_item_once(path: str) -> None:
    """Producers and consumers in separate processes, all opening a new file at once."""
    producers, consumers, per_producer = 3, 4, 600
    start = multiprocessing.get_context("spawn").Barrier(producers + consumers)
    targets: list[tuple[Any, tuple[Any, ...]]] = [
        (_produce, (path, p, per_producer, start)) for p in range(producers)
    ]
    targets += [(_consume, (path, c, producers, start)) for c in range(consumers)]
    results = _run_processes("spawn", targets)
    received = [item for kind, _, items in results if kind == "consumer" for item in items]
    expected = {f"p{p}-{i}".encode() for p in range(producers) for i in range(per_producer)}
    assert len(received) == len(expected)
    assert set(received) == expected
    with Connector(path) as connector:
        assert connector.length(QUEUE, include_delayed=True) == 0
        assert connector.leased_count(QUEUE) == 0


def test_each_producer_order_is_kept_across_processes(path: str) -> None:
    """Items from one producer process come out in the order it pushed them."""
    start = multiprocessing.get_context("spawn").Barrier(2)
    _run_processes("spawn", [(_produce, (path, p, 200, start)) for p in range(2)])
    with Connector(path) as connector:
        popped = connector.pop_many(QUEUE, 1_000)
    for producer in range(2):
        prefix = f"p{producer}-".encode()
        mine = [item for item in popped if item.startswith(prefix)]
        assert mine == [f"p{producer}-{i}".encode() for i in range(200)]


@pytest.mark.slow
def test_connector_opened_before_fork_works_in_the_child(path: str) -> None:
    """A connector used before a fork serves the child, and the parent after it."""
    connector = Connector(path)
    connector.push(QUEUE, b"from-parent")
    assert connector.length(QUEUE) == 1  # the parent's connection is open now
    [leased] = _run_processes("fork", [(_use_inherited, (connector,))])
    assert leased == [b"from-child", b"from-parent"]
    assert connector.length(QUEUE) == 0
    connector.push(QUEUE, b"after")
    assert connector.pop(QUEUE) == b"after"
    connector.close()


# -- files --------------------------------------------------------------------------


def test_missing_directory_is_created(tmp_path: Path) -> None:
    """A file path in directories that do not exist yet works: they are created."""
    path = tmp_path / "a" / "b" / "broker.sqlite3"
    with Connector(str(path)) as connector:
        connector.push(QUEUE, b"x")
        assert connector.pop(QUEUE) == b"x"
    assert path.is_file()


def test_constructor_touches_nothing(tmp_path: Path) -> None:
    """Creating the connector opens no file; the first call does."""
    path = tmp_path / "lazy" / "broker.sqlite3"
    connector = Connector(str(path))
    assert not path.parent.exists()
    connector.ping()
    assert path.is_file()
    connector.close()


def test_unopenable_path_names_the_file(tmp_path: Path) -> None:
    """A path under a regular file raises BrokerUnavailable naming the path."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_bytes(b"")
    path = str(blocker / "broker.sqlite3")
    connector = Connector(path)
    with pytest.raises(BrokerUnavailable, match="not-a-dir") as raised:
        connector.ping()
    assert raised.value.__cause__ is not None
    with pytest.raises(BrokerUnavailable):
        connector.push(QUEUE, b"x")


def test_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    """A file holding something else raises BrokerUnavailable, and is left alone."""
    path = tmp_path / "notes.txt"
    path.write_bytes(b"these are my notes, not a database" * 100)
    with pytest.raises(BrokerUnavailable, match=r"notes\.txt"):
        Connector(str(path)).ping()
    assert path.read_bytes().startswith(b"these are my notes")


# -- schema and settings --------------------------------------------------------------


def test_schema_version_and_wal_are_set(path: str) -> None:
    """The file carries the schema version and is in WAL mode."""
    connector = Connector(path)
    with connector._session() as conn:
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 1_000
    connector.close()
    check = sqlite3.connect(path)
    try:
        assert check.execute("PRAGMA user_version").fetchone()[0] == local_schema.SCHEMA_VERSION
        assert check.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        check.close()


def test_a_version_2_file_migrates_and_keeps_its_tasks(path: str) -> None:
    """A file of schema version 2 gets the unique columns and index; its rows, which
    hold no key, stay and are handed out as before."""
    raw = sqlite3.connect(path)
    for step in (0, 1):
        for statement in local_schema.MIGRATIONS[step]:
            raw.execute(statement)
    raw.execute("PRAGMA user_version = 2")
    raw.execute(sql.INSERT_TASK, (QUEUE, sql.PRIORITY_NORMAL, 1, 0.0, b"old"))
    raw.commit()
    raw.close()
    with Connector(path) as connector:
        assert connector.push_unique(QUEUE, [b"new"], ["k"], ["id-1"]) == ["id-1"]
        assert connector.push_unique(QUEUE, [b"dup"], ["k"], ["id-2"]) == ["id-1"]
        assert connector.pop_many(QUEUE, 10) == [b"old", b"new"]
    check = sqlite3.connect(path)
    try:
        assert check.execute("PRAGMA user_version").fetchone()[0] == local_schema.SCHEMA_VERSION
    finally:
        check.close()


def test_newer_schema_is_refused(path: str) -> None:
    """A file written by a newer Sergeant is refused with what to do."""
    raw = sqlite3.connect(path)
    raw.execute(f"PRAGMA user_version = {local_schema.SCHEMA_VERSION + 1}")
    raw.close()
    with pytest.raises(BrokerUnavailable, match="upgrade Sergeant"):
        Connector(path).ping()


@pytest.mark.parametrize("statement", ["LEASE_READY", "POP_READY"])
def test_pop_order_uses_the_ready_index(path: str, statement: str) -> None:
    """Lease and pop find the next items through the tasks_ready index, not a scan."""
    with Connector(path) as connector:
        connector.ping()
    raw = sqlite3.connect(path)
    try:
        params = (1.0, "o", QUEUE, 10) if statement == "LEASE_READY" else (QUEUE, 10)
        plan = raw.execute("EXPLAIN QUERY PLAN " + getattr(sql, statement), params)
        details = [row[3] for row in plan]
    finally:
        raw.close()
    assert any("USING INDEX tasks_ready" in detail for detail in details)
    assert not any(detail.startswith("SCAN tasks") for detail in details)


# -- errors and lifecycle -----------------------------------------------------------


def test_write_lock_held_too_long_is_connection_lost(
    path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write lock held past the busy timeout surfaces as ConnectionLost."""
    monkeypatch.setattr(session, "DEFAULT_BUSY_TIMEOUT_SECONDS", 0.05)
    connector = Connector(path)
    connector.ping()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(ConnectionLost, match="locked") as raised:
            connector.push(QUEUE, b"x")
        assert isinstance(raised.value.__cause__, sqlite3.OperationalError)
    finally:
        other.execute("ROLLBACK")
        other.close()
    connector.push(QUEUE, b"x")  # the failed transaction left nothing half-done
    assert connector.pop_many(QUEUE, 10) == [b"x"]
    connector.close()


def test_closed_connector_refuses_calls(path: str) -> None:
    """Using a connector after close raises ConnectorError."""
    connector = Connector(path)
    connector.close()
    with pytest.raises(ConnectorError, match="closed"):
        connector.push(QUEUE, b"x")


def _poll_idle(connector: Connector, seconds: float) -> None:
    """Poll the queue as an idle worker does, for ``seconds``."""
    give_up = time.monotonic() + seconds
    while time.monotonic() < give_up:
        connector.lease_many(QUEUE, 1, "w", LEASE, block_seconds=0.1)


def _remove_broker_files(path: str) -> None:
    for suffix in ("", "-wal", "-shm"):
        os.remove(path + suffix)


@pytest.mark.parametrize("change", ["deleted", "replaced", "moved"])
def test_file_changed_under_the_connection_is_refused_from_then_on(
    path: str, tmp_path: Path, change: str
) -> None:
    """The file at the path is not the one open: BrokerFileReplaced within a check
    interval, on every later call; a new connector works on the new file."""
    connector = Connector(path)
    connector.push(QUEUE, b"old")
    if change == "moved":
        os.rename(path, tmp_path / "elsewhere.sqlite3")
    else:
        _remove_broker_files(path)
    if change == "replaced":
        with Connector(path) as other:
            other.push(QUEUE, b"new")
    with pytest.raises(BrokerFileReplaced, match=r"deleted or moved away|replaced by another"):
        _poll_idle(connector, 10 * sqlite.IDENTITY_CHECK_SECONDS)
    with pytest.raises(BrokerFileReplaced):
        connector.push(QUEUE, b"lost")
    connector.close()
    with Connector(path) as fresh:
        assert fresh.pop_many(QUEUE, 10) == ([b"new"] if change == "replaced" else [])


def test_an_unchanged_file_is_never_refused(path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Checking the file's identity on every call finds nothing to complain about."""
    monkeypatch.setattr(session, "IDENTITY_CHECK_SECONDS", 0.0)
    with Connector(path) as connector, Connector(path) as other:
        for i in range(20):
            other.push(QUEUE, b"%d" % i)
            assert connector.pop_many(QUEUE, 1) == [b"%d" % i]


def test_unknown_priority_is_refused(path: str) -> None:
    """A priority other than NORMAL or HIGH is refused with the accepted values."""
    with Connector(path) as connector, pytest.raises(ValueError, match="'NORMAL' or 'HIGH'"):
        connector.push(QUEUE, b"x", priority="LOW")  # type: ignore[arg-type]


# -- ordering details ---------------------------------------------------------------


def test_due_item_joins_the_tail_when_due(path: str) -> None:
    """A delayed item does not overtake items that were ready before it fell due."""
    with Connector(path) as connector:
        connector.push(QUEUE, b"delayed", consumable_from=time.time() + 0.2)
        connector.push(QUEUE, b"ready")
        wait_until(lambda: connector.length(QUEUE) == 2, timeout=10, message="the item due")
        assert connector.pop_many(QUEUE, 10) == [b"ready", b"delayed"]


def test_blocking_lease_sees_a_delayed_item_once_due(path: str) -> None:
    """A blocking lease returns a delayed item once due, not before."""
    with Connector(path) as connector:
        due = time.time() + 0.2
        connector.push(QUEUE, b"later", consumable_from=due)
        got = connector.lease_many(QUEUE, 10, "w", LEASE, block_seconds=30)
        assert time.time() >= due
        assert [d.payload for d in got] == [b"later"]


def test_released_item_stays_behind_high_priority(path: str) -> None:
    """A released NORMAL item goes to the head of NORMAL, still after HIGH items."""
    with Connector(path) as connector:
        connector.push_many(QUEUE, [b"n1", b"n2"])
        leased = connector.lease_many(QUEUE, 1, "w", LEASE)
        connector.push(QUEUE, b"h1", priority="HIGH")
        assert connector.release_many(QUEUE, leased) == 1
        assert connector.pop_many(QUEUE, 10) == [b"h1", b"n1", b"n2"]


def test_reclaimed_items_keep_their_order_ahead_of_others(path: str) -> None:
    """Reclaimed items go back to the head in their original order."""
    with Connector(path) as connector:
        connector.push_many(QUEUE, [b"a", b"b", b"c", b"d"])
        connector.lease_many(QUEUE, 2, "w", 0.05)
        wait_until(
            lambda: connector.reclaim_expired(QUEUE, 0).requeued == 2,
            timeout=10,
            message="the leases to expire",
        )
        assert connector.pop_many(QUEUE, 10) == [b"a", b"b", b"c", b"d"]


def test_duplicate_deliveries_in_one_batch_count_once(path: str) -> None:
    """The same delivery twice in a batch is dead-lettered and counted once."""
    with Connector(path) as connector:
        connector.push(QUEUE, b"x")
        [delivery] = connector.lease_many(QUEUE, 1, "w", LEASE)
        assert connector.dead_letter_many(QUEUE, [delivery, delivery], "test") == 1
        assert connector.dead_count(QUEUE) == 1


def test_requeued_dead_item_keeps_its_id(path: str) -> None:
    """An item requeued from the dead letters keeps its item id."""
    with Connector(path) as connector:
        connector.push(QUEUE, b"x")
        [first] = connector.lease_many(QUEUE, 1, "w", LEASE)
        connector.dead_letter_many(QUEUE, [first], "test")
        assert connector.requeue_dead(QUEUE) == 1
        [second] = connector.lease_many(QUEUE, 1, "w", LEASE)
        assert second.item_id == first.item_id
        assert second.deliveries == 1
