"""Held workflow steps on the SQLite connector beyond the shared contract: the schema
step that adds them, one transaction per advance, and the sweep of expired nodes."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from sergeant.connector.sqlite import Connector, flows, sql
from sergeant.connector.sqlite import schema as local_schema
from sergeant.errors import ConnectorError

QUEUE = "jobs"


@pytest.fixture
def path(tmp_path: Path) -> str:
    """A broker file that does not exist yet."""
    return str(tmp_path / "broker.sqlite3")


def count(path: str, table: str) -> int:
    check = sqlite3.connect(path)
    try:
        return int(check.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
    finally:
        check.close()


def run(path: str, statement: str) -> None:
    """One statement on a connection of its own (another process's, say)."""
    other = sqlite3.connect(path)
    try:
        other.execute(statement)
        other.commit()
    finally:
        other.close()


def test_a_version_3_file_migrates_and_keeps_its_tasks(path: str) -> None:
    """A file of schema version 3 gets the flow tables; its rows stay, in order."""
    raw = sqlite3.connect(path)
    for step in (0, 1, 2):
        for statement in local_schema.MIGRATIONS[step]:
            raw.execute(statement)
    raw.execute("PRAGMA user_version = 3")
    raw.execute(sql.INSERT_TASK, (QUEUE, sql.PRIORITY_NORMAL, 1, 0.0, b"old"))
    raw.execute("UPDATE counters SET value = 1 WHERE name = 'tail'")
    raw.commit()
    raw.close()
    with Connector(path) as connector:
        connector.hold(QUEUE, "f", 1, b"next", 1)
        assert connector.advance(QUEUE, "f", 1, 0, b"v") is True
        assert connector.pop_many(QUEUE, 10) == [b"old", b"next"]
    check = sqlite3.connect(path)
    try:
        assert check.execute("PRAGMA user_version").fetchone()[0] == local_schema.SCHEMA_VERSION
    finally:
        check.close()


def test_an_advance_that_fails_to_push_records_nothing(path: str) -> None:
    """The push and the record of the last member are one transaction: when the push
    fails, the member is not recorded either, and its retry pushes the item."""
    with Connector(path) as connector:
        connector.hold(QUEUE, "f", 1, b"next", 2)
        connector.advance(QUEUE, "f", 1, 0, b"v0")
        refuse = "SELECT RAISE(ABORT, 'refused')"
        run(path, f"CREATE TRIGGER refuse BEFORE INSERT ON tasks BEGIN {refuse}; END")
        with pytest.raises(ConnectorError, match="refused"):
            connector.advance(QUEUE, "f", 1, 1, b"v1")
        assert connector.flow_values(QUEUE, "f", 1) == {0: b"v0"}
        assert connector.flow_released(QUEUE, "f", 1) is False
        run(path, "DROP TRIGGER refuse")
        assert connector.advance(QUEUE, "f", 1, 1, b"v1") is True
        assert connector.pop_many(QUEUE, 10) == [b"next"]


def test_a_pushed_item_leaves_its_node(path: str) -> None:
    """Once pushed, the item is in ``tasks`` only: its node keeps no copy."""
    with Connector(path) as connector:
        connector.hold(QUEUE, "f", 1, b"next" * 1000, 1)
        connector.advance(QUEUE, "f", 1, 0, b"v")
    check = sqlite3.connect(path)
    try:
        assert check.execute("SELECT payload FROM flow_nodes").fetchall() == [(b"",)]
    finally:
        check.close()


def test_expired_nodes_are_swept_by_later_writes(path: str) -> None:
    """A hold or advance deletes expired nodes with their values, a batch at a time."""
    with Connector(path) as connector:
        for node in range(flows.SWEEP_BATCH + 2):
            connector.hold(QUEUE, "old", node, b"", 2, ttl_seconds=0.05)
            connector.advance(QUEUE, "old", node, 0, b"v", ttl_seconds=0.05)
        time.sleep(0.1)
        connector.advance(QUEUE, "new", 1, 0, b"v")
        assert count(path, "flow_nodes") == 2 + 1
        assert count(path, "flow_values") == 2 + 1
        connector.advance(QUEUE, "new", 1, 1, b"v")
        assert count(path, "flow_nodes") == count(path, "flow_values") - 1 == 1


def test_an_expired_node_starts_over(path: str) -> None:
    """A node recorded again after it expired counts only its new members."""
    with Connector(path) as connector:
        connector.advance(QUEUE, "f", 1, 0, b"old", ttl_seconds=0.05)
        time.sleep(0.1)
        connector.hold(QUEUE, "f", 1, b"next", 1)
        assert connector.length(QUEUE) == 0
        assert connector.advance(QUEUE, "f", 1, 0, b"new") is True
        assert connector.flow_values(QUEUE, "f", 1) == {0: b"new"}
        assert connector.pop_many(QUEUE, 10) == [b"next"]


def test_a_hold_needs_a_member(path: str) -> None:
    with Connector(path) as connector, pytest.raises(ValueError, match="at least 1"):
        connector.hold(QUEUE, "f", 1, b"next", 0)
