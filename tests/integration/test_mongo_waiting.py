"""MongoDB-specific behaviour of waiting items: the full listing order, what is never
listed, refs as ``_id`` bytes, and items spread over two deployments. The contract is
in tests/contract/test_waiting.py."""

from __future__ import annotations

import time
import typing
from collections.abc import Iterator

import pytest
from bson import ObjectId

from sergeant.connector.base import Waiting
from sergeant.connector.mongo import Connector

QUEUE = "q"
OWNER = "w"


@pytest.fixture
def mongo(mongo_params: dict[str, typing.Any]) -> Iterator[Connector]:
    """A connector on a database of its own."""
    connector = Connector(**mongo_params)
    yield connector
    connector.close()


@pytest.fixture
def spread(mongo_nodes_params: dict[str, typing.Any]) -> Iterator[Connector]:
    """A connector over two independent deployments."""
    connector = Connector(**mongo_nodes_params)
    yield connector
    connector.close()


def test_ready_then_delayed_per_priority_high_first(mongo: Connector) -> None:
    now = time.time()
    mongo.push_many(QUEUE, [b"n-late"], consumable_from=now + 7200)
    mongo.push_many(QUEUE, [b"n-soon"], consumable_from=now + 3600)
    mongo.push_many(QUEUE, [b"n1", b"n2"])
    mongo.push_many(QUEUE, [b"h-later"], "HIGH", consumable_from=now + 3600)
    mongo.push_many(QUEUE, [b"h1", b"h2"], "HIGH")
    (h1,) = mongo.lease_many(QUEUE, 1, OWNER, 30.0)
    mongo.release_many(QUEUE, [h1])  # back at the head of HIGH
    expected = [b"h1", b"h2", b"h-later", b"n1", b"n2", b"n-soon", b"n-late"]
    assert [item.payload for item in mongo.waiting(QUEUE)] == expected
    assert [item.payload for item in mongo.waiting(QUEUE, limit=4)] == expected[:4]
    assert mongo.waiting(QUEUE, limit=0) == []


def test_held_leased_and_dead_items_are_not_listed(mongo: Connector) -> None:
    mongo.hold(QUEUE, "flow-1", 1, b"held", 1)
    mongo.push_many(QUEUE, [b"dead", b"leased", b"ready"])
    dead, leased = mongo.lease_many(QUEUE, 2, OWNER, 30.0)
    mongo.dead_letter_many(QUEUE, [dead], "failed")
    assert [item.payload for item in mongo.waiting(QUEUE)] == [b"ready"]
    assert [item.payload for item in mongo.waiting("other")] == []
    assert leased.payload == b"leased"


def test_refs_are_document_ids_and_foreign_refs_are_ignored(mongo: Connector) -> None:
    mongo.push_many(QUEUE, [b"a"])
    (item,) = mongo.waiting(QUEUE)
    document = mongo._database().tasks.find_one({"queue": {"$eq": QUEUE}})
    assert document is not None
    assert ObjectId(item.ref) == document["_id"]
    foreign = [Waiting(b"not-an-id", b"a"), Waiting(ObjectId().binary, b"a")]
    assert mongo.remove_waiting(QUEUE, foreign) == 0
    assert mongo.remove_waiting("other", [item]) == 0  # another queue's name
    assert mongo.remove_waiting(QUEUE, [item, item]) == 1
    assert mongo.length(QUEUE, include_delayed=True) == 0


def test_spread_items_name_their_node_and_are_removed_there(spread: Connector) -> None:
    for payload in (b"a", b"b", b"c", b"d"):
        spread.push_many(QUEUE, [payload])  # one push each: the start rotates per push
    (leased,) = spread.lease_many(QUEUE, 1, OWNER, 30.0)
    found = spread.waiting(QUEUE)
    assert sorted(item.payload for item in found) == sorted(
        {b"a", b"b", b"c", b"d"} - {leased.payload}
    )
    assert {item.node for item in found} == {0, 1}
    assert spread.remove_waiting(QUEUE, found) == 3
    assert spread.waiting(QUEUE) == []
    assert spread.leased_count(QUEUE) == 1
