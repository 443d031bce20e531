"""Grouped items (``push_grouped``, ``set_group_limits``, ``group_counts``), run
against every broker set-up: items are ordinary items of their queue, leases visit
the groups round-robin, and a group's slot is held from the lease until the item
leaves it, whatever the path."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from sergeant.connector import Connector, Delivery, GroupLimits, create
from tests.servers import wait_until

LEASE = 30.0
OWNER = "worker-test"


def lease_all(connector: Connector, queue: str, lease: float = LEASE) -> list[Delivery]:
    return connector.lease_many(queue, 1_000, OWNER, lease)


def groups_of(deliveries: list[Delivery]) -> Counter[str]:
    """Payloads are ``b"<group>:<n>"`` in these tests."""
    return Counter(d.payload.split(b":")[0].decode() for d in deliveries)


def push(connector: Connector, queue: str, group: str, n: int, priority: str = "NORMAL") -> None:
    items = [f"{group}:{i}".encode() for i in range(n)]
    connector.push_grouped(queue, items, [group] * n, priority)  # type: ignore[arg-type]


def test_grouped_items_are_ordinary_items(connector: Connector, queue: str) -> None:
    push(connector, queue, "a", 3)
    push(connector, queue, "b", 2, "HIGH")
    connector.push_many(queue, [b"u:0"])
    connector.push_grouped(queue, [b"d:0"], ["d"], consumable_from=time.time() + 3600)
    assert connector.length(queue) == 6
    assert connector.length(queue, include_delayed=True) == 7
    assert connector.length_by_priority(queue) == {"HIGH": 2, "NORMAL": 4}
    assert len(connector.waiting(queue)) == 7
    doomed = [w for w in connector.waiting(queue) if w.payload in (b"a:1", b"d:0")]
    assert connector.remove_waiting(queue, doomed) == 2
    assert connector.length(queue, include_delayed=True) == 5
    (leased,) = connector.lease_many(queue, 1, OWNER, LEASE)
    assert connector.leased_count(queue) == 1
    assert connector.purge(queue) == 4
    assert connector.ack_many(queue, [leased]) == 1
    assert lease_all(connector, queue) == []


def test_within_a_group_high_comes_first_then_fifo(connector: Connector, queue: str) -> None:
    connector.push_grouped(queue, [b"a:n1", b"a:n2"], ["a", "a"])
    connector.push_grouped(queue, [b"a:h1", b"a:h2"], ["a", "a"], "HIGH")
    payloads = [connector.lease_many(queue, 1, OWNER, LEASE)[0].payload for _ in range(4)]
    assert payloads == [b"a:h1", b"a:h2", b"a:n1", b"a:n2"]


def test_a_delayed_item_joins_its_group_when_due(connector: Connector, queue: str) -> None:
    connector.push_grouped(queue, [b"a:late"], ["a"], consumable_from=time.time() + 0.3)
    assert lease_all(connector, queue) == []
    found: list[Delivery] = []

    def lease_more() -> bool:
        found.extend(lease_all(connector, queue))
        return bool(found)

    wait_until(lease_more, timeout=10)
    assert [d.payload for d in found] == [b"a:late"]
    assert connector.group_counts(queue)[0].group == "a"


def test_leases_take_one_item_per_group_per_round(connector: Connector, queue: str) -> None:
    """A big group does not delay a small one: each round takes one of each."""
    push(connector, queue, "big", 100)
    push(connector, queue, "small", 3)
    connector.push_many(queue, [b"plain:0", b"plain:1", b"plain:2"])
    if connector.ordered:  # on several nodes each node's ring is its own
        got = groups_of(connector.lease_many(queue, 9, OWNER, LEASE))
        assert got == {"big": 3, "small": 3, "plain": 3}
    assert len(lease_all(connector, queue)) == (100 + 6 - 9 if connector.ordered else 106)


def test_small_leases_hand_out_every_item_once(connector: Connector, queue: str) -> None:
    """Grouped and ungrouped items, leased two at a time: each exactly once."""
    push(connector, queue, "a", 3)
    push(connector, queue, "b", 2, "HIGH")
    connector.push_many(queue, [b"plain:0", b"plain:1", b"plain:2", b"plain:3"])
    connector.push_many(queue, [b"plain:h"], "HIGH")
    seen: list[bytes] = []
    for _ in range(20):
        leased = connector.lease_many(queue, 2, OWNER, LEASE)
        assert connector.ack_many(queue, leased) == len(leased)
        seen += [d.payload for d in leased]
    assert len(seen) == len(set(seen)) == 10
    assert connector.length(queue) == 0


def test_the_ring_starts_where_the_previous_lease_stopped(connector: Connector, queue: str) -> None:
    if not connector.ordered:
        pytest.skip("on several nodes each node's ring is its own")
    for group in ("a", "b", "c"):
        push(connector, queue, group, 4)
    firsts = [connector.lease_many(queue, 1, OWNER, LEASE)[0] for _ in range(6)]
    assert sorted(groups_of(firsts).values()) == [2, 2, 2]


def test_concurrency_bounds_the_leased_items_of_each_group(
    connector: Connector, queue: str
) -> None:
    connector.set_group_limits(queue, GroupLimits(concurrency=2))
    push(connector, queue, "a", 5)
    push(connector, queue, "b", 5)
    connector.push_many(queue, [b"plain:0", b"plain:1", b"plain:2"])
    first = lease_all(connector, queue)
    assert groups_of(first) == {"a": 2, "b": 2, "plain": 3}
    assert lease_all(connector, queue) == []
    a_items = [d for d in first if d.payload.startswith(b"a:")]
    assert connector.ack_many(queue, a_items[:1]) == 1
    assert groups_of(lease_all(connector, queue)) == {"a": 1}
    counts = {c.group: (c.ready, c.leased) for c in connector.group_counts(queue)}
    assert counts == {"a": (2, 2), "b": (3, 2)}


def test_every_way_out_of_a_lease_gives_the_slot_back(connector: Connector, queue: str) -> None:
    connector.set_group_limits(queue, GroupLimits(concurrency=1))
    push(connector, queue, "a", 6)

    def one() -> Delivery:
        (delivery,) = lease_all(connector, queue)
        assert lease_all(connector, queue) == []  # the slot is held
        return delivery

    first = one()
    assert connector.release_many(queue, [first]) == 1  # back at the head of its group
    again = one()
    assert again.payload == first.payload
    assert connector.dead_letter_many(queue, [again], "bad") == 1
    charged = one()
    assert connector.charge_many(queue, [charged], 1, "killed").dead_lettered == 1
    requeued = one()
    assert connector.charge_many(queue, [requeued], 5, "killed").requeued == 1
    owned = one()
    assert owned.payload == requeued.payload
    assert connector.release_owned(queue, OWNER) == 1
    assert connector.extend_owned(queue, OWNER, LEASE) == 0
    (short,) = lease_all(connector, queue, lease=0.2)
    assert short.payload == owned.payload
    wait_until(lambda: connector.reclaim_expired(queue, 10).requeued == 1, timeout=10)
    back = one()
    assert back.payload == short.payload
    assert connector.ack_many(queue, [back]) == 1
    assert connector.requeue_dead(queue) == 2
    for _ in range(5):
        assert connector.ack_many(queue, [one()]) == 1
    assert connector.length(queue) == 0
    assert connector.group_counts(queue) == []


def test_ack_and_lease_obeys_the_limits(connector: Connector, queue: str) -> None:
    connector.set_group_limits(queue, GroupLimits(concurrency=1))
    push(connector, queue, "a", 3)
    (first,) = lease_all(connector, queue)
    acked, leased = connector.ack_and_lease(queue, [first], 10, OWNER, LEASE)
    assert acked == 1
    assert [d.payload for d in leased] == [b"a:1"]


def test_the_rate_bounds_leases_of_each_group_per_window(connector: Connector, queue: str) -> None:
    connector.set_group_limits(queue, GroupLimits(rate_tasks=2, rate_seconds=0.5))
    push(connector, queue, "a", 5)
    first = lease_all(connector, queue)
    assert len(first) == 2
    assert connector.ack_many(queue, first) == 2
    # Within the window nothing more (unless the window is already over: slow machine).
    started = time.monotonic()
    early = lease_all(connector, queue)
    if time.monotonic() - started < 0.4:
        assert early == []
    got = list(early)

    def lease_more() -> bool:
        got.extend(lease_all(connector, queue))
        return len(got) >= 3

    wait_until(lease_more, timeout=10)
    assert len(got) <= 3 + 2


def test_leases_without_limits_set_are_unbounded(
    connector: Connector, queue: str, connector_config: tuple[str, dict[str, object]]
) -> None:
    """Limits belong to the connector object that was given them."""
    connector.set_group_limits(queue, GroupLimits(concurrency=1))
    push(connector, queue, "a", 4)
    other = create(*connector_config)
    try:
        assert len(other.lease_many(queue, 10, OWNER, LEASE)) == 4
    finally:
        other.close()
    connector.set_group_limits(queue, GroupLimits())


def test_pop_many_pops_grouped_items_round_robin(connector: Connector, queue: str) -> None:
    connector.set_group_limits(queue, GroupLimits(concurrency=1))
    push(connector, queue, "a", 5)
    push(connector, queue, "b", 1)
    popped = connector.pop_many(queue, 4)
    assert len(popped) == 4
    if connector.ordered:
        assert groups_of([Delivery(p, "", 0, 0) for p in popped]) == {"a": 3, "b": 1}
    assert len(connector.pop_many(queue, 10)) == 2
    assert connector.group_counts(queue) == []


def test_group_counts_lists_the_largest_first(connector: Connector, queue: str) -> None:
    push(connector, queue, "a", 2)
    push(connector, queue, "b", 5)
    push(connector, queue, "c", 1)
    connector.push_many(queue, [b"plain:0"])
    counts = connector.group_counts(queue)
    assert [(c.group, c.ready, c.leased) for c in counts] == [
        ("b", 5, 0),
        ("a", 2, 0),
        ("c", 1, 0),
    ]
    assert len(connector.group_counts(queue, limit=2)) == 2


def test_one_key_per_item_is_required(connector: Connector, queue: str) -> None:
    with pytest.raises(ValueError, match="group key"):
        connector.push_grouped(queue, [b"a", b"b"], ["a"])
