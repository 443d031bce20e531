"""Grouped items on the SQLite broker beyond the shared contract: the version 4 to 5
migration, the indexes the ring's statements use, and limits held across processes."""

from __future__ import annotations

import multiprocessing
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from sergeant.connector import GroupCount, GroupLimits
from sergeant.connector.sqlite import Connector, groups, registry, sql, waiting
from sergeant.connector.sqlite import schema as local_schema

QUEUE = "jobs"
LEASE = 300.0
PROCESS_TIMEOUT = 120.0


@pytest.fixture
def path(tmp_path: Path) -> str:
    """A broker file that does not exist yet."""
    return str(tmp_path / "broker.sqlite3")


def test_a_version_4_file_migrates_and_keeps_its_tasks_and_dead_letters(path: str) -> None:
    """A file of schema version 4 gets the group columns, indexes and tables; its rows
    stay ungrouped and are handed out, dead-lettered and requeued as before."""
    raw = sqlite3.connect(path)
    for step in range(4):
        for statement in local_schema.MIGRATIONS[step]:
            raw.execute(statement)
    raw.execute("PRAGMA user_version = 4")
    raw.execute(sql.INSERT_TASK, (QUEUE, sql.PRIORITY_NORMAL, 1, 0.0, b"old"))
    raw.execute(sql.INSERT_TASK, (QUEUE, sql.PRIORITY_NORMAL, 2, 0.0, b"old-dead"))
    raw.execute(
        """INSERT INTO dead (queue, task_id, payload, reason, error, deliveries, dead_at)
        VALUES (?, 99, ?, 'bad', '', 1, 0)""",
        (QUEUE, b"was-dead"),
    )
    raw.commit()
    raw.close()
    with Connector(path) as connector:
        connector.push_grouped(QUEUE, [b"a:0", b"a:1"], ["a", "a"])
        assert connector.length(QUEUE) == 4
        assert [(c.group, c.ready) for c in connector.group_counts(QUEUE)] == [("a", 2)]
        assert connector.requeue_dead(QUEUE) == 1  # an old dead letter: ungrouped
        leased = connector.lease_many(QUEUE, 10, "w", LEASE)
        # The ring: the ungrouped items (in their order) and group "a", one per visit.
        assert [d.payload for d in leased] == [b"old", b"a:0", b"old-dead", b"a:1", b"was-dead"]
        assert connector.ack_many(QUEUE, leased) == 5
    check = sqlite3.connect(path)
    try:
        assert check.execute("PRAGMA user_version").fetchone()[0] == local_schema.SCHEMA_VERSION
    finally:
        check.close()


def test_a_dead_grouped_item_comes_back_into_its_group(path: str) -> None:
    """The dead letter keeps the group, so the limits hold for requeued items too."""
    with Connector(path) as connector:
        connector.set_group_limits(QUEUE, GroupLimits(concurrency=1))
        connector.push_grouped(QUEUE, [b"a:0", b"a:1"], ["a", "a"])
        first = connector.lease_many(QUEUE, 10, "w", LEASE)
        assert connector.dead_letter_many(QUEUE, first, "bad") == 1
        assert connector.requeue_dead(QUEUE) == 1
        assert [(c.group, c.ready) for c in connector.group_counts(QUEUE)] == [("a", 2)]
        assert len(connector.lease_many(QUEUE, 10, "w", LEASE)) == 1


@pytest.mark.parametrize(
    ("statement", "index", "params"),
    [
        ("HAS_GROUPED", "tasks_group_ready", (QUEUE,)),
        ("NEXT_GROUP", "tasks_group_ready", (QUEUE, "a")),
        ("GROUP_HEAD", "tasks_group_ready", (QUEUE, "a")),
        ("COUNT_GROUP_LEASED", "tasks_group_leased", (QUEUE, "a")),
        ("UNGROUPED_HEAD", "tasks_ready", (QUEUE,)),
        ("COUNT_STARTS", "group_starts_key", (QUEUE, "a", 1.0)),
        ("SWEEP_STARTS", "group_starts_at", (QUEUE, 1.0)),
    ],
)
def test_the_ring_statements_use_their_indexes(
    path: str, statement: str, index: str, params: tuple[Any, ...]
) -> None:
    """Each step of the ring is an index seek, never a scan of the table."""
    with Connector(path) as connector:
        connector.ping()
    raw = sqlite3.connect(path)
    try:
        plan = raw.execute("EXPLAIN QUERY PLAN " + getattr(groups, statement), params)
        details = [row[3] for row in plan]
    finally:
        raw.close()
    assert any(f"INDEX {index}" in detail for detail in details), details
    assert not any(detail.startswith("SCAN tasks") for detail in details), details


@pytest.mark.parametrize(
    ("statement", "params"),
    [
        (sql.PEEK_READY, (QUEUE, QUEUE)),
        (sql.COUNT_READY, (QUEUE, QUEUE, 1.0)),
        (sql.COUNT_WAITING, (QUEUE, QUEUE)),
        (sql.PURGE_WAITING, (QUEUE, QUEUE)),
        (registry.COUNT_READY_BY_PRIORITY, (QUEUE, QUEUE, 1.0)),
        (waiting.SELECT_WAITING, (QUEUE, 10)),
    ],
)
def test_reads_of_all_ready_rows_use_both_ready_indexes(
    path: str, statement: str, params: tuple[Any, ...]
) -> None:
    """Ungrouped ready rows are on ``tasks_ready``, grouped ones on
    ``tasks_group_ready``: a read of every ready row seeks both, scanning neither."""
    with Connector(path) as connector:
        connector.ping()
    raw = sqlite3.connect(path)
    try:
        details = [row[3] for row in raw.execute("EXPLAIN QUERY PLAN " + statement, params)]
    finally:
        raw.close()
    assert any("INDEX tasks_ready " in detail for detail in details), details
    assert any("INDEX tasks_group_ready " in detail for detail in details), details
    assert not any(detail.startswith("SCAN tasks") for detail in details), details


def test_a_big_group_does_not_hold_back_a_small_one(path: str) -> None:
    """With 20,000 items in one group, every lease of three takes one of the small
    group's and one of the ungrouped items pushed after them all."""
    with Connector(path) as connector:
        connector.push_grouped(QUEUE, [b"big"] * 20_000, ["big"] * 20_000)
        connector.push_grouped(QUEUE, [b"small"] * 10, ["small"] * 10)
        connector.push_many(QUEUE, [b"plain"] * 10)
        for _ in range(10):
            leased = connector.lease_many(QUEUE, 3, "w", LEASE)
            assert sorted(d.payload for d in leased) == [b"big", b"plain", b"small"]
            connector.ack_many(QUEUE, leased)
        assert connector.group_counts(QUEUE) == [GroupCount("big", 19_990, 0)]


# -- processes ----------------------------------------------------------------------


def _hold(path: str, worker: int, start: Any, done: Any, out: Any) -> None:
    """Lease all it can at once, report it, and hold the leases until told."""
    connector = Connector(path)
    connector.set_group_limits(QUEUE, GroupLimits(concurrency=3))
    start.wait(PROCESS_TIMEOUT)
    leased = connector.lease_many(QUEUE, 50, f"w{worker}", LEASE)
    out.put([d.payload.split(b":")[0].decode() for d in leased])
    done.wait(PROCESS_TIMEOUT)
    connector.ack_many(QUEUE, leased)
    connector.close()


@pytest.mark.slow
def test_processes_leasing_together_never_exceed_a_groups_concurrency(path: str) -> None:
    """Six processes lease at once and hold: each group has exactly 3 leased in all."""
    with Connector(path) as connector:
        for group in ("a", "b", "c"):
            connector.push_grouped(
                QUEUE, [f"{group}:{i}".encode() for i in range(20)], [group] * 20
            )
    workers = 6
    ctx: Any = multiprocessing.get_context("spawn")
    start, done, out = ctx.Barrier(workers), ctx.Event(), ctx.Queue()
    processes = [
        ctx.Process(target=_hold, args=(path, w, start, done, out)) for w in range(workers)
    ]
    for process in processes:
        process.start()
    try:
        leased: Counter[str] = Counter()
        for _ in range(workers):
            leased.update(out.get(timeout=PROCESS_TIMEOUT))
        assert leased == {"a": 3, "b": 3, "c": 3}
        with Connector(path) as connector:
            counts = {c.group: (c.ready, c.leased) for c in connector.group_counts(QUEUE)}
        assert counts == {"a": (17, 3), "b": (17, 3), "c": (17, 3)}
    finally:
        done.set()
        for process in processes:
            process.join(timeout=PROCESS_TIMEOUT)
            if process.is_alive():
                process.kill()
    assert [p.exitcode for p in processes] == [0] * workers
    with Connector(path) as connector:
        assert connector.leased_count(QUEUE) == 0
        assert connector.length(QUEUE) == 51
