"""Held workflow steps (``hold`` / ``advance`` / ``flow_values`` / ``flow_released``),
run against every broker set-up: the held item is pushed exactly once, by the advance
that records its last needed member."""

from __future__ import annotations

import threading
import time
import uuid

from sergeant.connector import Connector, create
from tests.servers import wait_until

OWNER = "worker-test"


def flow() -> str:
    return f"flow-{uuid.uuid4().hex[:12]}"


def drain(connector: Connector, queue: str) -> list[bytes]:
    return connector.pop_many(queue, 1_000)


def test_the_item_is_pushed_by_the_last_needed_member(connector: Connector, queue: str) -> None:
    flow_id = flow()
    connector.hold(queue, flow_id, 3, b"next", 3)
    assert connector.length(queue) == 0
    assert connector.advance(queue, flow_id, 3, 0, b"v0") is False
    assert connector.advance(queue, flow_id, 3, 1, b"v1") is False
    assert connector.length(queue) == 0
    assert connector.flow_released(queue, flow_id, 3) is False
    assert connector.advance(queue, flow_id, 3, 2, b"v2") is True
    assert drain(connector, queue) == [b"next"]
    assert connector.flow_released(queue, flow_id, 3) is True
    assert connector.flow_values(queue, flow_id, 3) == {0: b"v0", 1: b"v1", 2: b"v2"}


def test_a_member_recorded_again_counts_once_and_keeps_its_first_value(
    connector: Connector, queue: str
) -> None:
    flow_id = flow()
    connector.hold(queue, flow_id, 1, b"next", 2)
    assert connector.advance(queue, flow_id, 1, 0, b"first") is False
    assert connector.advance(queue, flow_id, 1, 0, b"second") is False  # a rerun
    assert connector.length(queue) == 0
    assert connector.flow_values(queue, flow_id, 1) == {0: b"first"}
    assert connector.advance(queue, flow_id, 1, 1, b"v1") is True
    # Every later advance, of any member, reports the node complete and pushes nothing.
    assert connector.advance(queue, flow_id, 1, 1, b"again") is True
    assert connector.advance(queue, flow_id, 1, 0, b"again") is True
    assert drain(connector, queue) == [b"next"]
    assert drain(connector, queue) == []


def test_holding_again_changes_nothing(connector: Connector, queue: str) -> None:
    flow_id = flow()
    connector.hold(queue, flow_id, 1, b"next", 1)
    connector.hold(queue, flow_id, 1, b"other", 5)
    assert connector.advance(queue, flow_id, 1, 0, b"v") is True
    assert drain(connector, queue) == [b"next"]
    connector.hold(queue, flow_id, 1, b"next", 1)  # after its push: still once
    assert drain(connector, queue) == []


def test_members_recorded_before_the_hold_count(connector: Connector, queue: str) -> None:
    flow_id = flow()
    assert connector.advance(queue, flow_id, 2, 0, b"v0") is False
    assert connector.advance(queue, flow_id, 2, 1, b"v1") is False
    connector.hold(queue, flow_id, 2, b"next", 2)
    assert drain(connector, queue) == [b"next"]
    assert connector.advance(queue, flow_id, 2, 1, b"v1") is True


def test_an_empty_payload_only_counts(connector: Connector, queue: str) -> None:
    flow_id = flow()
    connector.hold(queue, flow_id, 9, b"", 2)
    assert connector.advance(queue, flow_id, 9, 0, b"a") is False
    assert connector.advance(queue, flow_id, 9, 1, b"b") is True
    assert connector.flow_released(queue, flow_id, 9) is True
    assert connector.length(queue, include_delayed=True) == 0
    assert connector.flow_values(queue, flow_id, 9) == {0: b"a", 1: b"b"}


def test_nodes_are_separate_by_flow_node_and_queue(connector: Connector, queue: str) -> None:
    one, two = flow(), flow()
    connector.hold(queue, one, 1, b"one-1", 1)
    connector.hold(queue, one, 2, b"one-2", 1)
    connector.hold(queue, two, 1, b"two-1", 1)
    connector.hold(f"{queue}-other", one, 1, b"other-1", 1)
    assert connector.advance(queue, one, 1, 0, b"v") is True
    assert drain(connector, queue) == [b"one-1"]
    assert connector.flow_values(queue, two, 1) == {}
    assert connector.flow_values(f"{queue}-other", one, 1) == {}
    assert connector.length(f"{queue}-other") == 0


def test_a_released_item_is_an_ordinary_item(connector: Connector, queue: str) -> None:
    """It keeps its priority, is leased, acknowledged and never pushed again."""
    flow_id = flow()
    connector.push_many(queue, [b"normal"])
    connector.hold(queue, flow_id, 1, b"high", 1, "HIGH")
    assert connector.advance(queue, flow_id, 1, 0, b"v") is True
    first, second = connector.lease_many(queue, 10, OWNER, 30.0)
    assert (first.payload, second.payload) == (b"high", b"normal")
    assert connector.ack_many(queue, [first, second]) == 2
    assert connector.advance(queue, flow_id, 1, 0, b"v") is True
    assert connector.length(queue, include_delayed=True) == connector.leased_count(queue) == 0


def test_concurrent_members_push_the_item_once(
    connector: Connector, connector_config: tuple[str, dict[str, object]], queue: str
) -> None:
    """Members advanced at once by many clients (and each twice): one push."""
    flow_id, members = flow(), 40
    connector.hold(queue, flow_id, 1, b"next", members)
    kind, params = connector_config
    clients = [create(kind, params) for _ in range(4)] if kind != "memory" else [connector] * 4
    done: list[bool] = []

    def advance(client: Connector, start: int) -> None:
        for member in [*range(start, members, 4), *range(start, members, 4)]:
            done.append(client.advance(queue, flow_id, 1, member, str(member).encode()))

    threads = [threading.Thread(target=advance, args=(c, i)) for i, c in enumerate(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(done) == 2 * members
    assert drain(connector, queue) == [b"next"]
    values = connector.flow_values(queue, flow_id, 1)
    assert values == {member: str(member).encode() for member in range(members)}
    if kind != "memory":
        for client in clients:
            client.close()


def test_nodes_expire_after_their_ttl(connector: Connector, queue: str) -> None:
    flow_id = flow()
    connector.hold(queue, flow_id, 1, b"", 2, ttl_seconds=1.0)
    connector.advance(queue, flow_id, 1, 0, b"v", ttl_seconds=1.0)
    assert connector.flow_values(queue, flow_id, 1) == {0: b"v"}
    start = time.monotonic()
    wait_until(
        lambda: connector.flow_values(queue, flow_id, 1) == {},
        timeout=30,
        message="the node to expire",
    )
    assert time.monotonic() - start < 30
