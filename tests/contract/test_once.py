"""``Connector.push_once``, run against every broker set-up: a key stores its item
once within its keep time, whatever becomes of the item, however many callers race."""

from __future__ import annotations

import threading

import pytest

from sergeant.connector import Connector
from tests.servers import wait_until

LEASE = 30.0
OWNER = "worker-test"
KEEP = 3600.0


def test_a_key_stores_its_item_once(connector: Connector, queue: str) -> None:
    assert connector.push_once(queue, b"a", "tick-1", KEEP) is True
    assert connector.push_once(queue, b"b", "tick-1", KEEP) is False
    assert connector.push_once(queue, b"c", "tick-2", KEEP) is True
    popped = connector.pop_many(queue, 10)
    # Order across nodes (or shards) is not kept: the two keys may sit on different ones.
    assert (popped if connector.ordered else sorted(popped)) == [b"a", b"c"]


def test_the_mark_outlives_the_item(connector: Connector, queue: str) -> None:
    """Acknowledged, dead-lettered or purged: the key stays used until it expires."""
    connector.push_once(queue, b"a", "k1", KEEP)
    assert connector.ack_many(queue, connector.lease_many(queue, 10, OWNER, LEASE)) == 1
    assert connector.push_once(queue, b"again", "k1", KEEP) is False
    connector.push_once(queue, b"b", "k2", KEEP)
    connector.dead_letter_many(queue, connector.lease_many(queue, 10, OWNER, LEASE), "bad")
    assert connector.push_once(queue, b"again", "k2", KEEP) is False
    connector.push_once(queue, b"c", "k3", KEEP)
    assert connector.purge(queue) == 1
    assert connector.push_once(queue, b"again", "k3", KEEP) is False
    assert connector.length(queue, include_delayed=True) == 0


def test_a_key_is_free_again_once_its_mark_expires(connector: Connector, queue: str) -> None:
    assert connector.push_once(queue, b"a", "k", 0.3) is True
    wait_until(
        lambda: connector.push_once(queue, b"b", "k", 0.3), timeout=10, message="the mark to expire"
    )
    assert sorted(connector.pop_many(queue, 10)) == [b"a", b"b"]


def test_keys_are_per_queue_and_priorities_hold(connector: Connector, queue: str) -> None:
    other = queue + "-other"
    assert connector.push_once(queue, b"normal", "k", KEEP) is True
    assert connector.push_once(other, b"there", "k", KEEP) is True
    assert connector.push_once(queue, b"high", "k-high", KEEP, "HIGH") is True
    assert connector.length_by_priority(queue) == {"HIGH": 1, "NORMAL": 1}
    popped = connector.pop_many(queue, 10)
    # On independent nodes (not ``ordered``) the two keys may live on different nodes.
    expected = [b"high", b"normal"]
    assert (popped if connector.ordered else sorted(popped)) == expected
    assert connector.pop_many(other, 10) == [b"there"]


def test_an_item_pushed_once_is_leased_and_acknowledged_as_any(
    connector: Connector, queue: str
) -> None:
    connector.push_once(queue, b"payload", "k", KEEP)
    (delivery,) = connector.lease_many(queue, 10, OWNER, LEASE)
    assert delivery.payload == b"payload"
    assert connector.leased_count(queue) == 1
    assert connector.ack_many(queue, [delivery]) == 1


def test_racing_callers_store_each_key_once(connector: Connector, queue: str) -> None:
    """8 threads push the same 20 keys at once: 20 items, 20 True answers in all."""
    keys = [f"tick-{i}" for i in range(20)]
    wins: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def pusher() -> None:
        start.wait()
        for key in keys:
            if connector.push_once(queue, key.encode(), key, KEEP):
                with lock:
                    wins.append(key)

    threads = [threading.Thread(target=pusher) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(wins) == sorted(keys)
    assert sorted(connector.pop_many(queue, 100)) == sorted(k.encode() for k in keys)


def test_bad_arguments_are_refused(connector: Connector, queue: str) -> None:
    with pytest.raises(ValueError, match="keep_seconds"):
        connector.push_once(queue, b"a", "k", 0)
    with pytest.raises(ValueError, match="priority"):
        connector.push_once(queue, b"a", "k", KEEP, "LOW")  # type: ignore[arg-type]
    assert connector.length(queue) == 0
