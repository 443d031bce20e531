"""Unique pushes from several processes: 100 concurrent pushes of one key from 4
processes store one task; once it is acknowledged, the key can be pushed again."""

from __future__ import annotations

import multiprocessing
import typing
from pathlib import Path

import pytest

from sergeant.connector import Connector, create

PROCESSES = 4
PUSHES = 25  # per process: 100 in all


def _pusher(
    kind: str, params: dict[str, typing.Any], queue: str, start: typing.Any, out: typing.Any
) -> None:
    connector = create(kind, params)
    name = multiprocessing.current_process().name
    start.wait(30)
    holders = [
        connector.push_unique(queue, [b"once"], ["the-key"], [f"{name}-{n}"])[0]
        for n in range(PUSHES)
    ]
    out.put(holders)
    connector.close()


def _push_from_processes(kind: str, params: dict[str, typing.Any], queue: str) -> set[str]:
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    workers = [
        ctx.Process(target=_pusher, args=(kind, params, queue, start, out), name=f"p{i}")
        for i in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    start.set()
    holders: set[str] = set()
    for _ in workers:
        holders.update(out.get(timeout=60))
    for worker in workers:
        worker.join(30)
        assert worker.exitcode == 0
    return holders


def _drain_by_lease(connector: Connector, queue: str) -> int:
    """Lease and acknowledge everything: the independent count of stored tasks."""
    count = 0
    while deliveries := connector.lease_many(queue, 1_000, "ledger", 30.0):
        count += connector.ack_many(queue, deliveries)
    return count


@pytest.mark.parametrize("kind", ["local", "redis"])
def test_concurrent_pushes_of_one_key_store_one_task(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path, queue: str
) -> None:
    if kind == "local":
        params: dict[str, typing.Any] = {"file_path": str(tmp_path / "broker.sqlite3")}
    else:
        params = {"nodes": [request.getfixturevalue("redis_node")]}
    connector = create(kind, params)
    try:
        holders = _push_from_processes(kind, params, queue)
        assert len(holders) == 1  # every push was told the one holder's id
        assert connector.length(queue) == 1
        assert _drain_by_lease(connector, queue) == 1
        # Completed: the key is free again, and holds once more.
        again = _push_from_processes(kind, params, queue)
        assert len(again) == 1
        assert again != holders
        assert _drain_by_lease(connector, queue) == 1
    finally:
        connector.close()
