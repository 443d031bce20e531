"""Unique pushes from several processes: 100 concurrent pushes of one key from 4
processes store one task; once it is acknowledged, the key can be pushed again.

The ledger is independent of the pushes' answers: every stored task is leased and
acknowledged, and counted."""

from __future__ import annotations

import multiprocessing
import typing
import uuid
from pathlib import Path

import pytest

from sergeant import Worker, WorkerConfig
from sergeant.config import Connector as ConnectorConfig
from sergeant.connector import Connector, create

PROCESSES = 4
PUSHES = 25  # per process: 100 in all


def _pusher(
    kind: str,
    params: dict[str, typing.Any],
    queue: str,
    start: typing.Any,
    out: typing.Any,
    tag: str,
) -> None:
    connector = create(kind, params)
    name = multiprocessing.current_process().name
    start.wait(30)
    holders = [
        connector.push_unique(queue, [b"once"], ["the-key"], [f"{tag}-{name}-{n}"])[0]
        for n in range(PUSHES)
    ]
    out.put(holders)
    connector.close()


def _push_from_processes(
    kind: str, params: dict[str, typing.Any], queue: str, tag: str
) -> set[str]:
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    workers = [
        ctx.Process(target=_pusher, args=(kind, params, queue, start, out, tag), name=f"p{i}")
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


@pytest.mark.parametrize("kind", ["local", "redis", "mongo"])
def test_concurrent_pushes_of_one_key_store_one_task(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path, queue: str
) -> None:
    if kind == "local":
        params: dict[str, typing.Any] = {"file_path": str(tmp_path / "broker.sqlite3")}
    elif kind == "redis":
        params = {"nodes": [request.getfixturevalue("redis_node")]}
    else:
        params = request.getfixturevalue("mongo_params")
    connector = create(kind, params)
    try:
        holders = _push_from_processes(kind, params, queue, "first")
        assert len(holders) == 1  # every push was told the one holder's id
        assert connector.length(queue) == 1
        assert _drain_by_lease(connector, queue) == 1
        # Completed: the key is free again, and holds once more.
        again = _push_from_processes(kind, params, queue, "again")
        assert len(again) == 1
        assert again != holders
        assert _drain_by_lease(connector, queue) == 1
    finally:
        connector.close()


class _Producer(Worker):
    """A worker on an in-process broker of its own."""

    def generate_config(self) -> WorkerConfig:
        store = {"name": f"unique-{uuid.uuid4().hex}"}
        return WorkerConfig(name="unique", connector=ConnectorConfig(type="memory", params=store))


def test_worker_pushes_with_keys_return_the_holders_id() -> None:
    """``push_task(unique_key=)`` and ``push_tasks(unique_keys=)`` through the broker."""
    producer = _Producer()
    producer.init_broker()
    first = producer.push_task({"n": 1}, unique_key="k")
    assert producer.push_task({"n": 2}, unique_key="k") == first
    ids = producer.push_tasks([{"n": 3}, {"n": 4}, {"n": 5}], unique_keys=["k", "j", "j"])
    assert ids[0] == first
    assert ids[1] == ids[2] != first
    assert producer.push_task({"n": 6}) not in (first, ids[1])
    assert producer.number_of_enqueued_tasks() == 3
    producer.purge_tasks()
    assert producer.push_task({"n": 7}, unique_key="k") != first


@pytest.mark.parametrize(
    ("keys", "error"),
    [(["a"], ValueError), (["a", ""], ValueError), (["a", 3], TypeError), ("ab", TypeError)],
)
def test_bad_unique_keys_are_refused(keys: typing.Any, error: type[Exception]) -> None:
    producer = _Producer()
    producer.init_broker()
    with pytest.raises(error):
        producer.push_tasks([{"n": 1}, {"n": 2}], unique_keys=keys)
    with pytest.raises(ValueError, match="empty"):
        producer.push_task({"n": 1}, unique_key="")
    assert producer.number_of_enqueued_tasks() == 0
