"""Fencing tokens never repeat for an item, and idle at-most-once waits end on a push.

Each test names one promise of ``sergeant/connector/base.py``.
"""

from __future__ import annotations

import threading

from sergeant.connector import Connector, Delivery

LEASE = 30.0
OWNER = "worker-test"


def _only_this_lease_counts(connector: Connector, queue: str, stale: Delivery) -> None:
    """Every settling call with ``stale`` is refused; nothing changes."""
    assert connector.ack_many(queue, [stale]) == 0
    assert connector.extend_leases(queue, [stale], LEASE) == 0
    assert connector.release_many(queue, [stale]) == 0
    assert connector.dead_letter_many(queue, [stale], "test") == 0
    assert connector.leased_count(queue) == 1
    assert connector.dead_count(queue) == 0


def test_released_then_re_leased_item_fences_the_old_lease(
    connector: Connector, queue: str
) -> None:
    """After release and a new lease (same delivery count), the old Delivery cannot settle it."""
    connector.push(queue, b"x")
    [old] = connector.lease_many(queue, 1, OWNER, LEASE)
    assert connector.release_many(queue, [old]) == 1
    [new] = connector.lease_many(queue, 1, "other-worker", LEASE)
    assert (new.item_id, new.deliveries) == (old.item_id, old.deliveries)
    assert new.token != old.token
    _only_this_lease_counts(connector, queue, old)
    assert connector.ack_many(queue, [new]) == 1


def test_requeued_dead_item_fences_the_old_lease(connector: Connector, queue: str) -> None:
    """After dead -> requeue_dead -> lease (count back to 1), the first lease is still stale."""
    connector.push(queue, b"x")
    [old] = connector.lease_many(queue, 1, OWNER, LEASE)
    assert connector.dead_letter_many(queue, [old], "test") == 1
    assert connector.requeue_dead(queue) == 1
    [new] = connector.lease_many(queue, 1, "other-worker", LEASE)
    assert new.deliveries == old.deliveries == 1
    assert new.token != old.token
    _only_this_lease_counts(connector, queue, old)
    assert connector.ack_many(queue, [new]) == 1


def test_wait_for_items_returns_at_once_when_ready(connector: Connector, queue: str) -> None:
    """wait_for_items answers True without waiting when an item is ready, taking nothing."""
    connector.push(queue, b"x")
    assert connector.wait_for_items(queue, 10.0) is True
    assert connector.length(queue) == 1


def test_wait_for_items_gives_up_on_an_empty_queue(connector: Connector, queue: str) -> None:
    """wait_for_items answers False once its time runs out on an empty queue."""
    assert connector.wait_for_items(queue, 0.2) is False


def test_wait_for_items_wakes_on_a_push(connector: Connector, queue: str) -> None:
    """wait_for_items answers True when an item is pushed while it waits."""
    timer = threading.Timer(0.2, lambda: connector.push(queue, b"late"))
    timer.start()
    try:
        woke = connector.wait_for_items(queue, 20.0)
    finally:
        timer.join()
    assert woke is True
    assert connector.pop(queue) == b"late"
