"""MongoDB-specific behaviour of once pushes: a push left at any step by a caller that
died is finished by the next caller of its key, exactly once. Each test builds the
documents the dead caller left (the protocol is in ``sergeant.connector.mongo.once``);
the contract is in tests/contract/test_once.py."""

from __future__ import annotations

import json
import time
import typing
from collections.abc import Iterator

import pytest
from bson import ObjectId

from sergeant.connector.mongo import Connector
from sergeant.connector.mongo import once as mongo_once
from sergeant.connector.mongo.flows import HELD

QUEUE = "q"
KEY = "tick-1"
KEEP = 3600.0


@pytest.fixture
def mongo(mongo_params: dict[str, typing.Any]) -> Iterator[Connector]:
    connector = Connector(**mongo_params)
    yield connector
    connector.close()


def raw(connector: Connector) -> typing.Any:
    return connector._database()


def left_mark(connector: Connector, state: str, age: float, **fields: object) -> None:
    """The mark a caller that died ``age`` seconds ago left in ``state``."""
    now = time.time()
    raw(connector).once.insert_one(
        {
            "_id": json.dumps([QUEUE, KEY]),
            "queue": QUEUE,
            "state": state,
            "payload": b"dead caller's",
            "priority": 1,
            "at": now - age,
            "expires_at": now + KEEP,
            **fields,
        }
    )


def left_held(connector: Connector) -> ObjectId:
    """The held document a dead caller inserted (step 2)."""
    held_id = ObjectId()
    raw(connector).tasks.insert_one(
        {
            "_id": held_id,
            "queue": QUEUE,
            "state": HELD,
            "priority": 1,
            "seq": 0,
            "eta": 0.0,
            "payload": b"dead caller's",
            "deliveries": 0,
            "claim": "",
            "once_until": time.time() + KEEP,
        }
    )
    return held_id


def drain(connector: Connector) -> list[bytes]:
    deliveries = connector.lease_many(QUEUE, 100, "w", 30.0)
    connector.ack_many(QUEUE, deliveries)
    return [d.payload for d in deliveries]


def test_a_fresh_pending_mark_is_left_to_its_caller(mongo: Connector) -> None:
    left_mark(mongo, "n", age=0.0)
    assert mongo.push_once(QUEUE, b"mine", KEY, KEEP) is False
    assert drain(mongo) == []


def test_died_after_the_mark(mongo: Connector) -> None:
    """Step 1 done: the next caller pushes the item of the mark, once."""
    left_mark(mongo, "n", age=mongo_once.PENDING_SECONDS + 1)
    assert mongo.push_once(QUEUE, b"mine", KEY, KEEP) is True
    assert mongo.push_once(QUEUE, b"mine", KEY, KEEP) is False
    assert drain(mongo) == [b"dead caller's"]
    assert mongo.push_once(QUEUE, b"mine", KEY, KEEP) is False
    assert drain(mongo) == []


def test_died_after_inserting_its_held_document(mongo: Connector) -> None:
    """Step 2 done: the orphan is never handed out, and a sweep deletes it."""
    left_mark(mongo, "n", age=mongo_once.PENDING_SECONDS + 1)
    orphan = left_held(mongo)
    assert mongo.push_once(QUEUE, b"mine", KEY, KEEP) is True
    assert drain(mongo) == [b"dead caller's"]
    assert raw(mongo).tasks.find_one({"_id": orphan})["state"] == HELD
    raw(mongo).tasks.update_one({"_id": orphan}, {"$set": {"once_until": time.time() - 1}})
    mongo_once._last_sweep.clear()
    mongo.push_once(QUEUE, b"other", "tick-2", KEEP)
    assert raw(mongo).tasks.find_one({"_id": orphan}) is None


def test_died_after_naming_its_document(mongo: Connector) -> None:
    """Step 3 done: the next caller makes the named document ready, once."""
    held_id = left_held(mongo)
    left_mark(mongo, "p", age=mongo_once.PENDING_SECONDS + 1, q=held_id)
    assert mongo.push_once(QUEUE, b"mine", KEY, KEEP) is True
    assert mongo.push_once(QUEUE, b"mine", KEY, KEEP) is False
    assert drain(mongo) == [b"dead caller's"]


def test_died_after_making_it_ready(mongo: Connector) -> None:
    """Step 4 done and the item already consumed: nothing is pushed again."""
    held_id = left_held(mongo)
    raw(mongo).tasks.update_one({"_id": held_id}, {"$set": {"state": "r", "seq": 1}})
    assert drain(mongo) == [b"dead caller's"]
    left_mark(mongo, "p", age=mongo_once.PENDING_SECONDS + 1, q=held_id)
    assert mongo.push_once(QUEUE, b"mine", KEY, KEEP) is False
    assert drain(mongo) == []
    mark = raw(mongo).once.find_one({"_id": json.dumps([QUEUE, KEY])})
    assert mark["state"] == "d"
