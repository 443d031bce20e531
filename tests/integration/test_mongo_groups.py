"""Grouped items on MongoDB beyond the shared contract: the slot index that makes a
group's concurrency exact under racing leases, and what a crash between the rate
ticket and the claim, or after the claim, leaves behind."""

from __future__ import annotations

import threading
import time
import typing
from collections import Counter
from collections.abc import Iterator

import pymongo.errors
import pytest

from sergeant.connector import Delivery, GroupLimits
from sergeant.connector.mongo import Connector
from tests.servers import wait_until

LEASE = 30.0
QUEUE = "q"


@pytest.fixture
def mongo(mongo_params: dict[str, typing.Any]) -> Iterator[Connector]:
    """A connector on a database of its own."""
    connector = Connector(**mongo_params)
    yield connector
    connector.close()


def raw_database(connector: Connector) -> typing.Any:
    """The pymongo database behind a connector, to inspect or fake a crash."""
    return connector._database()


def push(connector: Connector, group: str, count: int) -> None:
    items = [f"{group}:{i}".encode() for i in range(count)]
    connector.push_grouped(QUEUE, items, [group] * count)


def groups_of(deliveries: typing.Iterable[Delivery]) -> Counter[str]:
    return Counter(d.payload.split(b":")[0].decode() for d in deliveries)


def test_racing_leases_never_exceed_a_groups_concurrency(
    mongo_params: dict[str, typing.Any],
) -> None:
    """Six threads over three connectors lease at once, round after round, and hold
    what they got: each group has exactly its concurrency leased in all."""
    connectors = [Connector(**mongo_params) for _ in range(3)]
    for connector in connectors:
        connector.set_group_limits(QUEUE, GroupLimits(concurrency=2))
    for group in ("a", "b", "c"):
        push(connectors[0], group, 10)
    threads = 6
    start = threading.Barrier(threads, timeout=60)
    results: list[list[Delivery]] = [[] for _ in range(threads)]

    def lease(slot: int) -> None:
        start.wait()
        results[slot] = connectors[slot % 3].lease_many(QUEUE, 10, f"w{slot}", LEASE)

    try:
        for _ in range(5):  # 10 items per group, 2 at a time
            workers = [threading.Thread(target=lease, args=(slot,)) for slot in range(threads)]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join(timeout=90)
            assert not any(worker.is_alive() for worker in workers)
            leased = [d for batch in results for d in batch]
            assert groups_of(leased) == {"a": 2, "b": 2, "c": 2}
            assert connectors[0].ack_many(QUEUE, leased) == 6
        assert connectors[0].length(QUEUE) == 0
    finally:
        for connector in connectors:
            connector.close()


def test_the_slot_index_refuses_a_second_holder(mongo: Connector) -> None:
    """The bound is the broker's: a document cannot take a slot another one holds."""
    mongo.set_group_limits(QUEUE, GroupLimits(concurrency=1))
    push(mongo, "a", 2)
    (held,) = mongo.lease_many(QUEUE, 10, "w", LEASE)
    tasks = raw_database(mongo).tasks
    assert tasks.find_one({"queue": QUEUE, "state": "l"})["slot"] == 0
    with pytest.raises(pymongo.errors.DuplicateKeyError):
        tasks.update_one({"queue": QUEUE, "state": "r"}, {"$set": {"state": "l", "slot": 0}})
    assert mongo.ack_many(QUEUE, [held]) == 1
    assert len(mongo.lease_many(QUEUE, 10, "w", LEASE)) == 1


def test_a_dead_workers_slot_comes_back_at_reclaim(mongo: Connector) -> None:
    """A worker that dies after its claim holds the slot until its lease is reclaimed,
    which frees it in the same update: nothing to recount, nothing leaked."""
    mongo.set_group_limits(QUEUE, GroupLimits(concurrency=1))
    push(mongo, "a", 2)
    (dead,) = mongo.lease_many(QUEUE, 10, "dead-worker", lease_seconds=0.1)
    assert mongo.lease_many(QUEUE, 10, "w", LEASE) == []
    wait_until(lambda: mongo.reclaim_expired(QUEUE, 10).requeued == 1, timeout=30)
    assert raw_database(mongo).tasks.count_documents({"slot": {"$exists": True}}) == 0
    (again,) = mongo.lease_many(QUEUE, 10, "w", LEASE)
    assert again.payload == dead.payload  # back at the head of its group


def test_every_end_of_a_lease_unsets_the_slot(mongo: Connector) -> None:
    """Release, charge, dead letter and release_owned leave no slot behind."""
    mongo.set_group_limits(QUEUE, GroupLimits(concurrency=1))
    push(mongo, "a", 3)
    tasks = raw_database(mongo).tasks

    def one() -> Delivery:
        (delivery,) = mongo.lease_many(QUEUE, 10, "w", LEASE)
        assert tasks.count_documents({"slot": 0}) == 1
        return delivery

    assert mongo.release_many(QUEUE, [one()]) == 1
    assert tasks.count_documents({"slot": {"$exists": True}}) == 0
    assert mongo.charge_many(QUEUE, [one()], 5, "killed").requeued == 1
    assert tasks.count_documents({"slot": {"$exists": True}}) == 0
    one()
    assert mongo.release_owned(QUEUE, "w") == 1
    assert tasks.count_documents({"slot": {"$exists": True}}) == 0
    assert mongo.dead_letter_many(QUEUE, [one()], "bad") == 1
    assert tasks.count_documents({"slot": {"$exists": True}}) == 0
    assert mongo.requeue_dead(QUEUE) == 1  # back into its group
    assert {(c.group, c.ready) for c in mongo.group_counts(QUEUE)} == {("a", 3)}


def test_a_crash_between_the_ticket_and_the_claim_wastes_one_window(mongo: Connector) -> None:
    """A ticket taken by a caller that died before claiming counts as a lease until its
    window ends: the rate errs on the strict side, then recovers by itself."""
    window = 0.5
    mongo.set_group_limits(QUEUE, GroupLimits(rate_tasks=2, rate_seconds=window))
    push(mongo, "a", 6)
    # What _take_ticket writes before its caller dies.
    raw_database(mongo).group_tickets.insert_one(
        {"_id": f"{QUEUE}\x00a\x000", "queue": QUEUE, "group": "a", "k": 0}
        | {"until": time.time() + window}
    )
    started = time.monotonic()
    first = mongo.lease_many(QUEUE, 10, "w", LEASE)
    if time.monotonic() - started < window * 0.8:  # else the window is over: slow machine
        assert len(first) == 1
    got = list(first)

    def lease_more() -> bool:
        got.extend(mongo.lease_many(QUEUE, 10, "w", LEASE))
        return len(got) >= 3

    wait_until(lease_more, timeout=30)
    assert len(got) <= 6
