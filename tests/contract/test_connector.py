"""The connector contract, run against every broker set-up (see ``CONNECTOR_KINDS``).

Each test names one promise of ``sergeant/connector/base.py``.
"""

from __future__ import annotations

import threading
import time

import pytest

from sergeant.connector import Connector, Delivery
from tests.servers import wait_until

LEASE = 30.0
OWNER = "worker-test"


def payloads(count: int, prefix: str = "t") -> list[bytes]:
    return [f"{prefix}{i}".encode() for i in range(count)]


def lease_all(connector: Connector, queue: str, count: int = 100_000) -> list[Delivery]:
    return connector.lease_many(queue, count, OWNER, LEASE)


def assert_order(connector: Connector, got: list[bytes], expected: list[bytes]) -> None:
    """``got == expected`` on an ordered connector; the same items (as a multiset) on one
    whose ``ordered`` is False (a queue spread over independent nodes)."""
    if connector.ordered:
        assert got == expected
    else:
        assert sorted(got) == sorted(expected)


def drain(connector: Connector, queue: str) -> list[bytes]:
    """Pop everything ready, in batches."""
    popped: list[bytes] = []
    while batch := connector.pop_many(queue, 1_000):
        popped.extend(batch)
    return popped


# -- push, pop, order -------------------------------------------------------------


def test_pop_returns_items_in_push_order(connector: Connector, queue: str) -> None:
    """Within one priority, items come out in the order they were pushed."""
    connector.push_many(queue, payloads(5))
    connector.push(queue, b"t5")
    assert_order(connector, connector.pop_many(queue, 10), payloads(6))
    assert connector.pop_many(queue, 10) == []


def test_successive_pushes_of_mixed_sizes_keep_every_item(connector: Connector, queue: str) -> None:
    """Single and bulk pushes one after another never overwrite each other."""
    connector.push(queue, b"first")
    connector.push_many(queue, payloads(100))
    connector.push(queue, b"h", priority="HIGH")
    connector.push_many(queue, payloads(3, "d"), consumable_from=time.time() + 3600)
    connector.push_many(queue, payloads(2_500, "bulk"))
    assert connector.length(queue) == 2_602
    assert connector.length(queue, include_delayed=True) == 2_605
    expected = [b"h", b"first", *payloads(100), *payloads(2_500, "bulk")]
    assert_order(connector, drain(connector, queue), expected)


def test_high_priority_is_served_first(connector: Connector, queue: str) -> None:
    """HIGH items are handed out before NORMAL ones pushed earlier."""
    connector.push_many(queue, [b"n1", b"n2"])
    connector.push_many(queue, [b"h1", b"h2"], priority="HIGH")
    if not connector.ordered:  # HIGH first per node only: check nothing is lost
        assert_order(connector, drain(connector, queue), [b"h1", b"h2", b"n1", b"n2"])
        return
    assert connector.pop_many(queue, 3) == [b"h1", b"h2", b"n1"]
    assert connector.pop(queue) == b"n2"
    assert connector.pop(queue) is None


def test_pop_count_is_respected(connector: Connector, queue: str) -> None:
    """pop_many never returns more than asked, and leaves the rest queued."""
    connector.push_many(queue, payloads(10))
    assert len(connector.pop_many(queue, 3)) == 3
    assert connector.length(queue) == 7


def test_queues_are_independent(connector: Connector, queue: str) -> None:
    """Items pushed to one queue are invisible from another."""
    other = queue + "-other"
    connector.push(queue, b"a")
    connector.push(other, b"b")
    assert connector.pop_many(other, 10) == [b"b"]
    assert connector.length(queue) == 1


def test_binary_payloads_round_trip(connector: Connector, queue: str) -> None:
    """Arbitrary bytes, including NUL and invalid UTF-8, come back unchanged."""
    blobs = [b"\x00\xff\x80binary\x00", bytes(range(256)), b""]
    connector.push_many(queue, blobs)
    assert_order(connector, connector.pop_many(queue, 10), blobs)


def test_bulk_push_and_pop_lose_and_duplicate_nothing(connector: Connector, queue: str) -> None:
    """10,000 items pushed in bulk come back exactly once each, in order."""
    items = payloads(10_000)
    assert connector.push_many(queue, items) == 10_000
    assert connector.length(queue) == 10_000
    assert_order(connector, drain(connector, queue), items)


# -- delayed items ------------------------------------------------------------------


def test_delayed_item_not_handed_out_before_due(connector: Connector, queue: str) -> None:
    """An item with consumable_from in the future is neither popped nor leased early."""
    connector.push(queue, b"later", consumable_from=time.time() + 3600)
    connector.push(queue, b"now")
    assert connector.pop_many(queue, 10) == [b"now"]
    assert lease_all(connector, queue) == []
    assert connector.length(queue) == 0
    assert connector.length(queue, include_delayed=True) == 1


def test_delayed_item_delivered_once_due(connector: Connector, queue: str) -> None:
    """A delayed item becomes available once its time has come, exactly once."""
    due = time.time() + 0.3
    connector.push_many(queue, [b"d1", b"d2"], consumable_from=due)
    got: list[bytes] = []

    def both_delivered() -> bool:
        got.extend(connector.pop_many(queue, 10))
        return len(got) == 2

    wait_until(both_delivered, timeout=10, message="delayed items to become due")
    assert time.time() >= due - 0.05
    assert sorted(got) == [b"d1", b"d2"]
    assert connector.length(queue, include_delayed=True) == 0


def test_past_consumable_from_is_ready_now(connector: Connector, queue: str) -> None:
    """consumable_from in the past means ready at once."""
    connector.push(queue, b"x", consumable_from=time.time() - 60)
    assert connector.length(queue) == 1
    assert connector.pop(queue) == b"x"


# -- length and purge -------------------------------------------------------------


def test_length_counts_ready_and_optionally_delayed(connector: Connector, queue: str) -> None:
    """length counts ready items; include_delayed adds the not-yet-due ones."""
    connector.push_many(queue, payloads(3))
    connector.push_many(queue, payloads(2, "h"), priority="HIGH")
    connector.push_many(queue, payloads(4, "d"), consumable_from=time.time() + 3600)
    assert connector.length(queue) == 5
    assert connector.length(queue, include_delayed=True) == 9
    assert connector.length(queue + "-empty") == 0


def test_purge_empties_ready_and_delayed(connector: Connector, queue: str) -> None:
    """purge deletes ready and delayed items and says how many."""
    connector.push_many(queue, payloads(3))
    connector.push_many(queue, payloads(2), consumable_from=time.time() + 3600)
    assert connector.purge(queue) == 5
    assert connector.length(queue, include_delayed=True) == 0
    assert connector.pop(queue) is None
    assert connector.purge(queue) == 0


# -- leases ---------------------------------------------------------------------------


def test_lease_hands_out_in_order_with_counts(connector: Connector, queue: str) -> None:
    """lease_many follows pop order and counts the first delivery as 1."""
    connector.push_many(queue, [b"n1", b"n2"])
    connector.push(queue, b"h1", priority="HIGH")
    leased = connector.lease_many(queue, 2, OWNER, LEASE)
    if connector.ordered:
        assert [d.payload for d in leased] == [b"h1", b"n1"]
    assert all(d.deliveries == 1 for d in leased)
    assert len({(d.item_id, d.token) for d in leased}) == 2
    assert len({d.item_id for d in leased}) == 2
    assert connector.length(queue) == 1
    assert connector.leased_count(queue) == 2


def test_leased_items_are_not_handed_out_again(connector: Connector, queue: str) -> None:
    """An item under lease is invisible to pop and to other leases."""
    connector.push_many(queue, payloads(3))
    first = lease_all(connector, queue)
    assert len(first) == 3
    assert lease_all(connector, queue) == []
    assert connector.pop_many(queue, 10) == []


def test_ack_settles_items_for_good(connector: Connector, queue: str) -> None:
    """Acknowledged items are gone: not leased, not ready, not reclaimable."""
    connector.push_many(queue, payloads(4))
    leased = lease_all(connector, queue)
    assert connector.ack_many(queue, leased) == 4
    assert connector.leased_count(queue) == 0
    assert connector.length(queue, include_delayed=True) == 0
    assert connector.reclaim_expired(queue, 0).requeued == 0
    assert connector.ack_many(queue, leased) == 0


def test_release_returns_items_to_the_head_uncounted(connector: Connector, queue: str) -> None:
    """Released items are ready again ahead of the rest, their delivery not counted."""
    connector.push_many(queue, [b"a", b"b", b"c"])
    leased = connector.lease_many(queue, 2, OWNER, LEASE)
    assert connector.release_many(queue, leased) == 2
    assert connector.leased_count(queue) == 0
    again = connector.lease_many(queue, 3, OWNER, LEASE)
    assert_order(connector, [d.payload for d in again], [b"a", b"b", b"c"])
    assert [d.deliveries for d in again] == [1, 1, 1]


def test_expired_lease_is_reclaimed_and_redelivered(connector: Connector, queue: str) -> None:
    """An item whose lease ran out goes back to ready and counts a second delivery."""
    connector.push_many(queue, [b"x", b"y"])
    first = connector.lease_many(queue, 1, OWNER, 0.2)
    assert len(first) == 1
    if connector.ordered:
        assert [d.payload for d in first] == [b"x"]
    wait_until(
        lambda: connector.reclaim_expired(queue, 0).requeued == 1,
        timeout=10,
        message="the lease to expire",
    )
    second = connector.lease_many(queue, 2, OWNER, LEASE)
    assert_order(connector, [d.payload for d in second], [b"x", b"y"])
    [again] = [d for d in second if d.payload == first[0].payload]
    assert (again.item_id, again.node) == (first[0].item_id, first[0].node)
    assert again.deliveries == 2


def test_stale_token_is_rejected(connector: Connector, queue: str) -> None:
    """After a lease expires and the item is re-leased, the old lease can do nothing."""
    connector.push(queue, b"x")
    [stale] = connector.lease_many(queue, 1, OWNER, 0.2)
    wait_until(lambda: connector.reclaim_expired(queue, 0).requeued == 1, timeout=10)
    [fresh] = connector.lease_many(queue, 1, "other-worker", LEASE)
    assert fresh.token != stale.token
    assert connector.ack_many(queue, [stale]) == 0
    assert connector.release_many(queue, [stale]) == 0
    assert connector.extend_leases(queue, [stale], LEASE) == 0
    assert connector.dead_letter_many(queue, [stale], "test") == 0
    assert connector.leased_count(queue) == 1
    assert connector.ack_many(queue, [fresh]) == 1


def test_stale_token_rejected_while_item_waits_in_ready(connector: Connector, queue: str) -> None:
    """A reclaimed item sitting in ready cannot be acknowledged by its old owner."""
    connector.push(queue, b"x")
    [stale] = connector.lease_many(queue, 1, OWNER, 0.2)
    wait_until(lambda: connector.reclaim_expired(queue, 0).requeued == 1, timeout=10)
    assert connector.ack_many(queue, [stale]) == 0
    assert connector.length(queue) == 1


def test_extended_lease_is_not_reclaimed(connector: Connector, queue: str) -> None:
    """A lease kept alive by extend_leases survives past its first deadline.

    Two leasing calls: a connector may keep one deadline per leased batch.
    """
    connector.push_many(queue, [b"kept", b"lost"])
    [kept] = connector.lease_many(queue, 1, OWNER, 0.5)
    [_lost] = connector.lease_many(queue, 1, OWNER, 0.5)

    def extend_and_reclaim() -> bool:
        assert connector.extend_leases(queue, [kept], 0.5) == 1
        return connector.reclaim_expired(queue, 0).requeued == 1

    wait_until(
        extend_and_reclaim, timeout=10, interval=0.05, message="the unextended lease to expire"
    )
    assert connector.extend_leases(queue, [kept], LEASE) == 1
    assert connector.leased_count(queue) == 1
    assert [d.payload for d in lease_all(connector, queue)] == [b"lost"]
    assert connector.ack_many(queue, [kept]) == 1


def test_reclaim_dead_letters_items_over_budget(connector: Connector, queue: str) -> None:
    """An item that used up its deliveries goes to the dead letters as 'worker died'."""
    connector.push(queue, b"poison")
    for attempt in range(1, 3):
        [delivery] = connector.lease_many(queue, 1, OWNER, 0.1)
        assert delivery.deliveries == attempt

        def reclaimed() -> bool:
            result = connector.reclaim_expired(queue, 2)
            return result.requeued + result.dead_lettered == 1

        wait_until(reclaimed, timeout=10, message="the lease to expire")
    assert connector.length(queue) == 0
    assert connector.dead_count(queue) == 1
    [dead] = connector.dead_letters(queue)
    assert dead.payload == b"poison"
    assert dead.reason == "worker died"
    assert dead.deliveries == 2


def test_concurrent_leases_hand_each_item_to_one_caller(connector: Connector, queue: str) -> None:
    """Four threads leasing at once never receive the same item twice."""
    connector.push_many(queue, payloads(2_000))
    results: list[list[bytes]] = [[] for _ in range(4)]

    def drain(slot: int) -> None:
        while batch := connector.lease_many(queue, 50, f"w{slot}", LEASE):
            results[slot].extend(d.payload for d in batch)

    threads = [threading.Thread(target=drain, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    everything = [item for chunk in results for item in chunk]
    assert len(everything) == 2_000
    assert set(everything) == set(payloads(2_000))


def test_lease_blocks_until_an_item_arrives(connector: Connector, queue: str) -> None:
    """A blocking lease returns the item pushed while it waits."""
    timer = threading.Timer(0.2, lambda: connector.push(queue, b"late"))
    timer.start()
    try:
        got = connector.lease_many(queue, 10, OWNER, LEASE, block_seconds=10.0)
        if not got:  # a spurious empty wake-up is allowed; a second wait must see it
            got = connector.lease_many(queue, 10, OWNER, LEASE, block_seconds=10.0)
    finally:
        timer.join()
    assert [d.payload for d in got] == [b"late"]


def test_lease_block_returns_empty_when_nothing_comes(connector: Connector, queue: str) -> None:
    """A blocking lease on an empty queue gives up and returns nothing."""
    assert connector.lease_many(queue, 10, OWNER, LEASE, block_seconds=0.2) == []


# -- dead letters -------------------------------------------------------------------


def test_dead_letter_keeps_reason_and_error(connector: Connector, queue: str) -> None:
    """Dead-lettered items keep payload, reason, last error and delivery count."""
    connector.push_many(queue, [b"a", b"b"])
    a, b = lease_all(connector, queue)
    assert connector.dead_letter_many(queue, [a], "max retries", "ValueError: boom") == 1
    assert connector.dead_letter_many(queue, [b], "undecodable payload", "pickle: truncated") == 1
    assert connector.leased_count(queue) == 0
    assert connector.dead_count(queue) == 2
    first, second = connector.dead_letters(queue)
    assert (first.payload, first.reason, first.error, first.deliveries) == (
        b"a",
        "max retries",
        "ValueError: boom",
        1,
    )
    assert (second.payload, second.reason) == (b"b", "undecodable payload")
    assert first.dead_at <= time.time() + 5


def test_dead_letters_limit_and_requeue(connector: Connector, queue: str) -> None:
    """requeue_dead moves dead items back to ready with a fresh delivery count."""
    connector.push_many(queue, payloads(3))
    connector.dead_letter_many(queue, lease_all(connector, queue), "test")
    assert len(connector.dead_letters(queue, limit=2)) == 2
    assert connector.requeue_dead(queue, limit=1) == 1
    assert connector.dead_count(queue) == 2
    assert connector.requeue_dead(queue) == 2
    leased = lease_all(connector, queue)
    assert sorted(d.payload for d in leased) == payloads(3)
    assert all(d.deliveries == 1 for d in leased)


def test_purge_dead(connector: Connector, queue: str) -> None:
    """purge_dead deletes every dead item and says how many."""
    connector.push_many(queue, payloads(2))
    connector.dead_letter_many(queue, lease_all(connector, queue), "test")
    assert connector.purge_dead(queue) == 2
    assert connector.dead_count(queue) == 0
    assert connector.dead_letters(queue) == []


# -- keys -----------------------------------------------------------------------------


def test_keys_set_get_delete(connector: Connector) -> None:
    """Keys store bytes, overwrite, and delete."""
    assert connector.key_get("k") is None
    connector.key_set("k", b"v1")
    connector.key_set("k", b"v2")
    assert connector.key_get("k") == b"v2"
    assert connector.key_delete("k") is True
    assert connector.key_delete("k") is False
    assert connector.key_get("k") is None


def test_key_ttl_expires(connector: Connector) -> None:
    """A key set with a TTL disappears after it."""
    connector.key_set("short", b"v", ttl_seconds=0.2)
    connector.key_set("long", b"v", ttl_seconds=3600)
    wait_until(lambda: connector.key_get("short") is None, timeout=10, message="the key to expire")
    assert connector.key_get("long") == b"v"


# -- locks ----------------------------------------------------------------------------


def test_lock_is_exclusive(connector: Connector) -> None:
    """Only one holder at a time; the other's acquire times out."""
    first, second = connector.lock("l"), connector.lock("l")
    assert first.acquire(timeout=1, check_interval=0.05) is True
    assert first.is_locked()
    assert second.is_locked()
    assert second.acquire(timeout=0.2, check_interval=0.05) is False
    assert first.release() is True
    assert first.is_locked() is False
    assert second.acquire(timeout=1, check_interval=0.05) is True
    assert second.release() is True


def test_non_holder_cannot_release_or_extend(connector: Connector) -> None:
    """release and set_ttl from a non-holder do nothing."""
    holder, other = connector.lock("l"), connector.lock("l")
    assert holder.acquire(timeout=1)
    assert other.release() is False
    assert other.set_ttl(100) is False
    assert holder.is_locked() is True
    assert holder.release() is True


def test_lock_ttl_expiry_lets_another_in(connector: Connector) -> None:
    """A lock its holder never released frees itself after its TTL."""
    holder, other = connector.lock("l"), connector.lock("l")
    assert holder.acquire(timeout=1, ttl=1)
    assert other.acquire(timeout=20, check_interval=0.05) is True
    assert holder.release() is False  # expired, and now someone else's
    assert other.is_locked() is True
    assert other.release() is True


def test_lock_ttl_can_be_read_and_changed(connector: Connector) -> None:
    """get_ttl reports the remaining seconds; set_ttl by the holder changes it."""
    lock = connector.lock("l")
    assert lock.get_ttl() is None
    assert lock.acquire(timeout=1, ttl=60)
    ttl = lock.get_ttl()
    assert ttl is not None
    assert 0 < ttl <= 60
    assert lock.set_ttl(600) is True
    ttl = lock.get_ttl()
    assert ttl is not None
    assert 60 < ttl <= 600
    assert lock.release() is True
    assert lock.get_ttl() is None


def test_lock_set_ttl_zero_frees_it(connector: Connector) -> None:
    """set_ttl(0) by the holder expires the lock now: get_ttl() is None and it is free (0.27)."""
    lock, other = connector.lock("l0"), connector.lock("l0")
    assert lock.acquire(timeout=1, ttl=60)
    assert lock.set_ttl(0) is True
    assert lock.get_ttl() is None
    assert lock.is_locked() is False
    assert other.acquire(timeout=1, ttl=60)
    assert lock.set_ttl(0) is False
    assert other.get_ttl() is not None


def test_lock_as_context_manager(connector: Connector) -> None:
    """``with lock:`` holds the lock inside the block and frees it after."""
    lock = connector.lock("ctx")
    with lock:
        assert lock.is_locked()
    assert not lock.is_locked()


def test_ping_succeeds_on_a_live_broker(connector: Connector) -> None:
    """ping returns quietly when the broker answers."""
    connector.ping()


@pytest.mark.parametrize("count", [1, 7])
def test_pop_and_lease_mix(connector: Connector, queue: str, count: int) -> None:
    """Pops and leases share one order and never overlap."""
    connector.push_many(queue, payloads(20))
    leased = connector.lease_many(queue, count, OWNER, LEASE)
    popped = connector.pop_many(queue, 100)
    assert_order(connector, [d.payload for d in leased] + popped, payloads(20))


def test_ack_and_lease_acknowledges_first_then_leases(connector: Connector, queue: str) -> None:
    """One call settles the last batch and takes the next; stale acks are not counted."""
    connector.push_many(queue, [b"a", b"b", b"c"])
    first = connector.lease_many(queue, 2, OWNER, LEASE)
    acked, second = connector.ack_and_lease(queue, first, 5, OWNER, LEASE)
    assert acked == 2
    assert sorted(d.payload for d in first + second) == [b"a", b"b", b"c"]
    assert connector.leased_count(queue) == 1
    acked, nothing = connector.ack_and_lease(queue, first + second, 5, OWNER, LEASE)
    assert (acked, nothing) == (1, [])
    assert connector.leased_count(queue) == 0


def test_settling_part_of_a_batch_leaves_the_rest_held(connector: Connector, queue: str) -> None:
    """Items leased together are settled one by one: each outcome applies to that item only."""
    connector.push_many(queue, [b"a", b"b", b"c", b"d"])
    batch = connector.lease_many(queue, 4, OWNER, LEASE)
    by_payload = {d.payload: d for d in batch}
    a, b, c, d = (by_payload[p] for p in (b"a", b"b", b"c", b"d"))
    assert connector.ack_many(queue, [b]) == 1
    assert connector.release_many(queue, [c]) == 1
    assert connector.dead_letter_many(queue, [a], "max retries") == 1
    assert connector.leased_count(queue) == 1
    assert connector.ack_many(queue, [a, b, c]) == 0  # already settled elsewhere
    assert connector.extend_leases(queue, [d], LEASE) == 1
    [again] = connector.lease_many(queue, 5, OWNER, LEASE)
    assert (again.payload, again.item_id, again.deliveries) == (b"c", c.item_id, 1)
    assert connector.ack_many(queue, [d, again]) == 2
    assert connector.leased_count(queue) == 0
    assert [dead.payload for dead in connector.dead_letters(queue)] == [b"a"]


def test_a_started_lease_finishes_later(connector: Connector, queue: str) -> None:
    """start_ack_and_lease: other calls may run before its reply is read."""
    connector.push_many(queue, [b"a", b"b", b"c"])
    first = connector.lease_many(queue, 1, OWNER, LEASE)
    finish = connector.start_ack_and_lease(queue, first, 1, OWNER, LEASE)
    assert connector.length(queue) in (1, 2)  # 2 until the started lease has run
    acked, second = finish()
    assert acked == 1
    assert len(second) == 1
    assert connector.leased_count(queue) == 1
    assert connector.length(queue) == 1
    assert connector.ack_many(queue, second) == 1


def test_started_pops_finish_later_in_order(connector: Connector, queue: str) -> None:
    """start_pop: several may be in flight; each gets its own items, none twice."""
    connector.push_many(queue, [b"a", b"b", b"c", b"d", b"e"])
    first, second = connector.start_pop(queue, 2), connector.start_pop(queue, 2)
    assert connector.leased_count(queue) == 0  # pops lease nothing
    popped = first() + second()
    assert len(popped) == 4
    if connector.ordered:
        assert popped == [b"a", b"b", b"c", b"d"]
    assert sorted(popped + connector.pop_many(queue, 5)) == [b"a", b"b", b"c", b"d", b"e"]
    assert connector.start_pop(queue, 3)() == []
