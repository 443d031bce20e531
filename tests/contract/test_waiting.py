"""``waiting`` / ``remove_waiting``, run against every broker set-up: waiting items are
listed with their payloads and removed one by one; a leased item stays leased."""

from __future__ import annotations

import time

from sergeant.connector import Connector

OWNER = "worker-test"


def test_waiting_lists_ready_and_delayed_items_not_leased_ones(
    connector: Connector, queue: str
) -> None:
    connector.push_many(queue, [b"n1", b"n2"])
    connector.push_many(queue, [b"h1"], "HIGH")
    connector.push_many(queue, [b"later"], consumable_from=time.time() + 3600)
    connector.push_many(queue, [b"leased"], "HIGH")
    (leased,) = connector.lease_many(queue, 1, OWNER, 30.0)
    if connector.ordered:  # spread over nodes, a lease takes the head of one node only
        assert leased.payload == b"h1"
    payloads = [item.payload for item in connector.waiting(queue)]
    pushed = [b"n1", b"n2", b"h1", b"later", b"leased"]
    assert sorted(payloads) == sorted(p for p in pushed if p != leased.payload)
    if connector.ordered:
        assert payloads.index(b"leased") < payloads.index(b"n1") < payloads.index(b"n2")
    assert len(connector.waiting(queue, limit=2)) == 2


def test_remove_waiting_removes_ready_and_delayed_items(connector: Connector, queue: str) -> None:
    connector.push_many(queue, [b"keep", b"drop"])
    connector.push_many(queue, [b"drop-later"], consumable_from=time.time() + 3600)
    doomed = [item for item in connector.waiting(queue) if item.payload.startswith(b"drop")]
    assert connector.remove_waiting(queue, doomed) == 2
    assert connector.length(queue, include_delayed=True) == 1
    assert connector.remove_waiting(queue, doomed) == 0  # gone already
    assert [d.payload for d in connector.lease_many(queue, 10, OWNER, 30.0)] == [b"keep"]


def test_an_item_leased_meanwhile_stays_leased(connector: Connector, queue: str) -> None:
    connector.push_many(queue, [b"a"])
    (item,) = connector.waiting(queue)
    (delivery,) = connector.lease_many(queue, 1, OWNER, 30.0)
    assert connector.remove_waiting(queue, [item]) == 0
    assert connector.ack_many(queue, [delivery]) == 1


def test_a_removed_item_frees_its_unique_key(connector: Connector, queue: str) -> None:
    assert connector.push_unique(queue, [b"a"], ["k"], ["id-1"]) == ["id-1"]
    (item,) = connector.waiting(queue)
    assert connector.remove_waiting(queue, [item]) == 1
    assert connector.push_unique(queue, [b"b"], ["k"], ["id-2"]) == ["id-2"]
