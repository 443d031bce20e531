"""The contract's owner-level and charging steps, run against every broker set-up.

These are what a supervisor uses to keep its children's leases and to settle a dead
child's at once: ``extend_owned``, ``release_owned`` and ``charge_many``.
"""

from __future__ import annotations

from sergeant.connector import Connector
from tests.contract.test_connector import LEASE, OWNER, assert_order, payloads
from tests.servers import wait_until

OTHER = "worker-other"


def test_charge_requeues_at_the_head_and_counts_the_delivery(
    connector: Connector, queue: str
) -> None:
    """A charged item is ready again first, its next delivery counted as the second."""
    connector.push_many(queue, [b"ran", b"next"])
    [ran] = connector.lease_many(queue, 1, OWNER, LEASE)
    result = connector.charge_many(queue, [ran], 5, "worker killed by SIGKILL")
    assert (result.requeued, result.dead_lettered) == (1, 0)
    assert connector.leased_count(queue) == 0
    again = connector.lease_many(queue, 2, OWNER, LEASE)
    rest = b"next" if ran.payload == b"ran" else b"ran"  # spread over nodes: either first
    assert_order(connector, [d.payload for d in again], [ran.payload, rest])
    [charged] = [d for d in again if d.item_id == ran.item_id]
    assert charged.deliveries == 2
    assert connector.charge_many(queue, [ran], 5, "stale") == type(result)()


def test_charge_dead_letters_at_the_bound_with_the_reason(connector: Connector, queue: str) -> None:
    """The delivery that reaches max_deliveries sends the item to the dead letters."""
    connector.push(queue, b"poison")
    for attempt in (1, 2):
        [delivery] = connector.lease_many(queue, 1, OWNER, LEASE)
        assert delivery.deliveries == attempt
        result = connector.charge_many(queue, [delivery], 2, "raised SystemExit", "SystemExit(3)")
    assert (result.requeued, result.dead_lettered) == (0, 1)
    assert connector.length(queue) == 0
    [dead] = connector.dead_letters(queue)
    assert (dead.payload, dead.reason, dead.error) == (
        b"poison",
        "raised SystemExit",
        "SystemExit(3)",
    )
    assert dead.deliveries == 2


def test_release_owned_gives_back_only_that_owners_items_in_order(
    connector: Connector, queue: str
) -> None:
    """Every batch of the owner comes back first, in lease order, uncounted."""
    connector.push_many(queue, payloads(6))
    first = connector.lease_many(queue, 2, OWNER, LEASE)
    others = connector.lease_many(queue, 1, OTHER, LEASE)
    second = connector.lease_many(queue, 2, OWNER, LEASE)
    assert connector.ack_many(queue, second[1:]) == 1
    assert connector.release_owned(queue, OWNER) == 3
    assert connector.leased_count(queue) == 1
    again = connector.lease_many(queue, 10, OWNER, LEASE)
    expected = [d.payload for d in (*first, second[0])] + [
        p for p in payloads(6) if p not in {d.payload for d in (*first, *second, *others)}
    ]
    assert_order(connector, [d.payload for d in again], expected)
    assert all(d.deliveries == 1 for d in again)
    assert connector.release_owned(queue, "nobody") == 0
    assert connector.ack_many(queue, others) == 1


def test_extend_owned_keeps_every_batch_of_the_owner(connector: Connector, queue: str) -> None:
    """Leases renewed by owner survive past their first deadline; the rest expire."""
    connector.push_many(queue, payloads(3))
    kept = [
        *connector.lease_many(queue, 1, OWNER, 0.5),
        *connector.lease_many(queue, 1, OWNER, 0.5),
    ]
    [lost] = connector.lease_many(queue, 1, OTHER, 0.5)

    def extend_and_reclaim() -> bool:
        assert connector.extend_owned(queue, OWNER, 0.5) == 2
        return connector.reclaim_expired(queue, 0).requeued == 1

    wait_until(extend_and_reclaim, timeout=10, interval=0.05, message="the other lease to expire")
    assert connector.extend_owned(queue, OWNER, LEASE) == 2
    assert connector.ack_many(queue, kept) == 2
    assert connector.extend_owned(queue, OWNER, LEASE) == 0
    assert [d.payload for d in connector.lease_many(queue, 5, OWNER, LEASE)] == [lost.payload]
