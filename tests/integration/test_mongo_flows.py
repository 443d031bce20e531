"""MongoDB-specific behaviour of held workflow steps: held documents are not ready
items, and a hold or advance that stopped half-way is repaired by its rerun without
pushing twice. The contract is in tests/contract/test_flows.py."""

from __future__ import annotations

import typing
from collections.abc import Iterator

import pytest

from sergeant.connector.mongo import Connector
from sergeant.connector.mongo.flows import HELD, _held_id, _insert_held, _key

QUEUE = "q"
FLOW = "flow-1"


@pytest.fixture
def mongo(mongo_params: dict[str, typing.Any]) -> Iterator[Connector]:
    """A connector on a database of its own."""
    connector = Connector(**mongo_params)
    yield connector
    connector.close()


def raw_database(connector: Connector) -> typing.Any:
    return connector._database()


def documents(collection: typing.Any, query: dict[str, object]) -> int:
    # Counted by reading: nx-27017's count_documents misses some filters.
    return len(list(collection.find(query)))


def test_held_items_are_not_ready_and_survive_a_purge(mongo: Connector) -> None:
    mongo.hold(QUEUE, FLOW, 1, b"next", 1, "HIGH")
    assert mongo.length(QUEUE, include_delayed=True) == 0
    assert mongo.length_by_priority(QUEUE) == {"HIGH": 0, "NORMAL": 0}
    assert mongo.lease_many(QUEUE, 10, "w", 30.0) == []
    assert mongo.pop_many(QUEUE, 10) == []
    assert mongo.purge(QUEUE) == 0
    assert mongo.advance(QUEUE, FLOW, 1, 0, b"v") is True
    assert mongo.length_by_priority(QUEUE) == {"HIGH": 1, "NORMAL": 0}
    assert mongo.pop_many(QUEUE, 10) == [b"next"]


def test_a_hold_stopped_before_the_node_remembered_it_is_finished_by_its_rerun(
    mongo: Connector,
) -> None:
    mongo.hold(QUEUE, FLOW, 1, b"next", 1)
    database, key = raw_database(mongo), _key(QUEUE, FLOW, 1)
    # As if the hold stopped after inserting its document: not remembered, not armed.
    database.flow_nodes.update_one({"_id": key}, {"$unset": {"inserted": ""}})
    database.tasks.update_one({"_id": _held_id(key)}, {"$set": {"armed": False}})
    assert mongo.advance(QUEUE, FLOW, 1, 0, b"v") is False
    assert mongo.length(QUEUE) == 0
    mongo.hold(QUEUE, FLOW, 1, b"next", 1)
    assert mongo.pop_many(QUEUE, 10) == [b"next"]
    mongo.hold(QUEUE, FLOW, 1, b"next", 1)
    assert mongo.advance(QUEUE, FLOW, 1, 0, b"v") is True
    assert mongo.pop_many(QUEUE, 10) == []


def test_a_member_counted_but_not_pushed_is_pushed_by_its_rerun(mongo: Connector) -> None:
    mongo.hold(QUEUE, FLOW, 1, b"next", 2)
    assert mongo.advance(QUEUE, FLOW, 1, 0, b"v0") is False
    database, key = raw_database(mongo), _key(QUEUE, FLOW, 1)
    # As if the advance of member 1 stopped between counting it and pushing.
    database.tasks.update_one(
        {"_id": _held_id(key)}, {"$set": {"members.1": 1}, "$inc": {"count": 1}}
    )
    assert mongo.length(QUEUE) == 0
    assert mongo.advance(QUEUE, FLOW, 1, 1, b"v1") is True
    assert mongo.advance(QUEUE, FLOW, 1, 1, b"v1") is True
    assert mongo.pop_many(QUEUE, 10) == [b"next"]
    assert documents(database.tasks, {}) == 0


def test_a_late_insert_after_the_push_is_dropped(mongo: Connector) -> None:
    """A hold that read the node before it was held and inserted after its item was
    pushed and acknowledged leaves nothing behind."""
    mongo.hold(QUEUE, FLOW, 1, b"next", 1)
    assert mongo.advance(QUEUE, FLOW, 1, 0, b"v") is True
    assert mongo.pop_many(QUEUE, 10) == [b"next"]
    database, key = raw_database(mongo), _key(QUEUE, FLOW, 1)
    held_id = _held_id(key)
    assert _insert_held(database, key, held_id, QUEUE, b"next", 1, "NORMAL") is None
    assert database.tasks.find_one({"_id": held_id}) is None
    assert mongo.flow_released(QUEUE, FLOW, 1) is True
    assert mongo.advance(QUEUE, FLOW, 1, 0, b"v") is True
    assert mongo.length(QUEUE, include_delayed=True) == 0


def test_an_expired_node_is_deleted_with_its_held_item(mongo: Connector) -> None:
    mongo.hold(QUEUE, FLOW, 1, b"next", 2, ttl_seconds=0.0)
    mongo.advance(QUEUE, "other", 1, 0, b"v", ttl_seconds=0.0)
    database = raw_database(mongo)
    assert documents(database.tasks, {"state": HELD}) == 1
    mongo.hold(QUEUE, "third", 1, b"x", 1)  # sweeps the expired nodes
    assert documents(database.tasks, {"state": HELD}) == 1  # only the third
    assert documents(database.flow_values, {}) == 0
    assert documents(database.flow_nodes, {}) == 1
    assert mongo.flow_values(QUEUE, FLOW, 1) == {}
    assert mongo.flow_released(QUEUE, FLOW, 1) is False
