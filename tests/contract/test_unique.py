"""``Connector.push_unique``, run against every broker set-up: a key is held while its
item is ready, delayed or leased, and free once the item is settled."""

from __future__ import annotations

import time

from sergeant.connector import Connector, Delivery
from tests.servers import wait_until

LEASE = 30.0
OWNER = "worker-test"


def lease_all(connector: Connector, queue: str) -> list[Delivery]:
    return connector.lease_many(queue, 1_000, OWNER, LEASE)


def test_one_key_is_stored_once_and_the_holder_is_returned(
    connector: Connector, queue: str
) -> None:
    """A second push of a held key stores nothing and returns the first item's id."""
    assert connector.push_unique(queue, [b"a"], ["k"], ["id-1"]) == ["id-1"]
    assert connector.push_unique(queue, [b"b"], ["k"], ["id-2"]) == ["id-1"]
    assert connector.length(queue) == 1
    assert connector.pop_many(queue, 10) == [b"a"]


def test_a_leased_or_delayed_item_holds_its_key(connector: Connector, queue: str) -> None:
    """Running (leased) and delayed items hold their key as ready ones do."""
    connector.push_unique(queue, [b"a"], ["k"], ["id-1"])
    (delivery,) = lease_all(connector, queue)
    assert connector.push_unique(queue, [b"b"], ["k"], ["id-2"]) == ["id-1"]
    later = time.time() + 3600
    assert connector.push_unique(queue, [b"d"], ["d"], ["id-3"], "HIGH", later) == ["id-3"]
    assert connector.push_unique(queue, [b"e"], ["d"], ["id-4"]) == ["id-3"]
    assert connector.length(queue, include_delayed=True) == 1
    assert connector.ack_many(queue, [delivery]) == 1


def test_the_key_is_free_again_after_an_ack(connector: Connector, queue: str) -> None:
    connector.push_unique(queue, [b"a"], ["k"], ["id-1"])
    assert connector.ack_many(queue, lease_all(connector, queue)) == 1
    assert connector.push_unique(queue, [b"b"], ["k"], ["id-2"]) == ["id-2"]
    assert connector.pop_many(queue, 10) == [b"b"]
    # Popped (at-most-once): settled when popped.
    assert connector.push_unique(queue, [b"c"], ["k"], ["id-3"]) == ["id-3"]


def test_the_key_is_free_again_after_a_dead_letter(connector: Connector, queue: str) -> None:
    connector.push_unique(queue, [b"a"], ["k"], ["id-1"])
    assert connector.dead_letter_many(queue, lease_all(connector, queue), "bad") == 1
    assert connector.push_unique(queue, [b"b"], ["k"], ["id-2"]) == ["id-2"]
    # Charged past the delivery bound: dead, and free.
    result = connector.charge_many(queue, lease_all(connector, queue), 1, "killed")
    assert result.dead_lettered == 1
    assert connector.push_unique(queue, [b"c"], ["k"], ["id-3"]) == ["id-3"]


def test_the_key_is_free_again_after_a_purge(connector: Connector, queue: str) -> None:
    connector.push_unique(queue, [b"a", b"d"], ["k", "d"], ["id-1", "id-d"], "NORMAL", 0.0)
    connector.push_unique(queue, [b"x"], ["x"], ["id-x"], "NORMAL", time.time() + 3600)
    assert connector.purge(queue) == 3
    assert connector.push_unique(queue, [b"b", b"y"], ["k", "x"], ["id-2", "id-y"]) == [
        "id-2",
        "id-y",
    ]


def test_a_released_or_requeued_item_keeps_its_key(connector: Connector, queue: str) -> None:
    connector.push_unique(queue, [b"a"], ["k"], ["id-1"])
    assert connector.release_many(queue, lease_all(connector, queue)) == 1
    assert connector.push_unique(queue, [b"b"], ["k"], ["id-2"]) == ["id-1"]
    result = connector.charge_many(queue, lease_all(connector, queue), 5, "killed")
    assert result.requeued == 1
    assert connector.push_unique(queue, [b"c"], ["k"], ["id-3"]) == ["id-1"]
    assert connector.length(queue) == 1


def test_equal_keys_in_one_call_store_the_first(connector: Connector, queue: str) -> None:
    holders = connector.push_unique(
        queue, [b"a", b"b", b"c", b"d"], ["k", "j", "k", None], ["i1", "i2", "i3", "i4"]
    )
    assert holders == ["i1", "i2", "i1", "i4"]
    assert sorted(connector.pop_many(queue, 10)) == [b"a", b"b", b"d"]


def test_keyless_pushes_are_unaffected(connector: Connector, queue: str) -> None:
    """Plain pushes next to unique ones store every item; None keys hold nothing."""
    connector.push_unique(queue, [b"a"], ["k"], ["id-1"])
    connector.push_many(queue, [b"p", b"p"])
    assert connector.push_unique(queue, [b"n", b"n"], [None, None], ["i", "i"]) == ["i", "i"]
    assert sorted(connector.pop_many(queue, 10)) == [b"a", b"n", b"n", b"p", b"p"]
    assert connector.push_unique(queue, [b"b"], ["k"], ["id-2"]) == ["id-2"]


def test_keys_are_per_queue(connector: Connector, queue: str) -> None:
    connector.push_unique(queue, [b"a"], ["k"], ["id-1"])
    assert connector.push_unique(queue + "-other", [b"b"], ["k"], ["id-2"]) == ["id-2"]
    connector.purge(queue + "-other")


def test_a_reclaimed_item_keeps_its_key_until_past_the_bound(
    connector: Connector, queue: str
) -> None:
    """Reclaimed and requeued: still held; reclaimed past the delivery bound: free."""
    connector.push_unique(queue, [b"a"], ["k"], ["id-1"])
    for attempt in (1, 2):
        assert len(connector.lease_many(queue, 1, OWNER, 0.1)) == 1

        def reclaimed() -> bool:
            result = connector.reclaim_expired(queue, 2)
            return result.requeued + result.dead_lettered == 1

        wait_until(reclaimed, timeout=10, message="the lease to expire")
        expected = "id-1" if attempt == 1 else "id-2"
        assert connector.push_unique(queue, [b"b"], ["k"], ["id-2"]) == [expected]
    assert connector.dead_count(queue) == 1


def test_a_dead_item_requeued_holds_no_key(connector: Connector, queue: str) -> None:
    connector.push_unique(queue, [b"a"], ["k"], ["id-1"])
    connector.dead_letter_many(queue, lease_all(connector, queue), "bad")
    assert connector.requeue_dead(queue) == 1
    assert connector.push_unique(queue, [b"b"], ["k"], ["id-2"]) == ["id-2"]
    assert sorted(connector.pop_many(queue, 10)) == [b"a", b"b"]
