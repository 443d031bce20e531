"""The SQLite connector's waiting items beyond the shared contract: the full order, what
is not listed, refs that name nothing, and two connections on one file."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from sergeant.connector.base import Waiting
from sergeant.connector.sqlite import Connector

QUEUE = "jobs"
OWNER = "worker-test"
LEASE = 300.0


@pytest.fixture
def connector(tmp_path: Path) -> Connector:
    return Connector(str(tmp_path / "broker.sqlite3"))


def test_ready_then_delayed_per_priority_high_first(connector: Connector) -> None:
    now = time.time()
    connector.push_many(QUEUE, [b"n-later-2"], consumable_from=now + 7200)
    connector.push_many(QUEUE, [b"n-later-1"], consumable_from=now + 3600)
    connector.push_many(QUEUE, [b"n1", b"n2"])
    connector.push_many(QUEUE, [b"h-later"], "HIGH", consumable_from=now + 3600)
    connector.push_many(QUEUE, [b"h1", b"h2"], "HIGH")
    payloads = [item.payload for item in connector.waiting(QUEUE)]
    assert payloads == [b"h1", b"h2", b"h-later", b"n1", b"n2", b"n-later-1", b"n-later-2"]
    assert [item.payload for item in connector.waiting(QUEUE, limit=4)] == payloads[:4]
    assert connector.waiting(QUEUE, limit=0) == []


def test_a_released_item_is_listed_where_it_will_be_handed_out(connector: Connector) -> None:
    connector.push_many(QUEUE, [b"a", b"b", b"c"])
    delivery = connector.lease_many(QUEUE, 2, OWNER, LEASE)[1]
    assert [item.payload for item in connector.waiting(QUEUE)] == [b"c"]
    connector.release_many(QUEUE, [delivery])  # back to the head
    assert [item.payload for item in connector.waiting(QUEUE)] == [b"b", b"c"]


def test_dead_and_other_queues_items_are_not_listed_nor_removed(connector: Connector) -> None:
    connector.push_many(QUEUE, [b"dies"])
    connector.push_many("other", [b"elsewhere"])
    (delivery,) = connector.lease_many(QUEUE, 1, OWNER, LEASE)
    connector.dead_letter_many(QUEUE, [delivery], "test")
    assert connector.waiting(QUEUE) == []
    (elsewhere,) = connector.waiting("other")
    assert connector.remove_waiting(QUEUE, [elsewhere]) == 0
    assert connector.length("other") == 1
    assert connector.dead_count(QUEUE) == 1


def test_refs_that_name_nothing_are_skipped(connector: Connector) -> None:
    connector.push_many(QUEUE, [b"a"])
    (item,) = connector.waiting(QUEUE)
    foreign = [Waiting(b"not-a-row", b""), Waiting(b"999999", b"")]
    assert connector.remove_waiting(QUEUE, [*foreign, item, item]) == 1
    assert connector.remove_waiting(QUEUE, []) == 0


def test_a_lease_taken_through_another_connection_stays(tmp_path: Path) -> None:
    path = str(tmp_path / "broker.sqlite3")
    lister, worker = Connector(path), Connector(path)
    lister.push_many(QUEUE, [b"a", b"b"])
    listed = lister.waiting(QUEUE)
    (delivery,) = worker.lease_many(QUEUE, 1, OWNER, LEASE)
    assert lister.remove_waiting(QUEUE, listed) == 1
    assert worker.ack_many(QUEUE, [delivery]) == 1
    assert lister.length(QUEUE, include_delayed=True) == 0


def test_a_due_delayed_item_is_listed_and_removed(connector: Connector) -> None:
    connector.push_many(QUEUE, [b"soon"], consumable_from=time.time() + 0.05)
    time.sleep(0.1)
    (item,) = connector.waiting(QUEUE)
    assert item.payload == b"soon"
    assert connector.remove_waiting(QUEUE, [item]) == 1
    assert connector.lease_many(QUEUE, 1, OWNER, LEASE) == []
