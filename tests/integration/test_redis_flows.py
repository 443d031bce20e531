"""Redis-specific behaviour of held workflow steps (the shared promises are in
``tests/contract/test_flows.py``): the node's hash and its TTL, the wake token of a
release, and where a node lives on several independent servers."""

from __future__ import annotations

import threading
import typing
import uuid
import zlib
from collections.abc import Iterator

import pytest
import redis

from sergeant.connector.base import Delivery
from sergeant.connector.redis import Connector, entries, keys
from sergeant.errors import ConfigError

Node = dict[str, object]


def raw(node: Node) -> redis.Redis:
    return redis.Redis(host=str(node["host"]), port=int(str(node["port"])))


def hash_of(client: redis.Redis, name: str) -> dict[bytes, bytes]:
    # This client never decodes: every field and value is bytes.
    return typing.cast("dict[bytes, bytes]", client.hgetall(name))


def flow() -> str:
    return f"flow-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def conn(redis_node: Node) -> Iterator[Connector]:
    connector = Connector([redis_node])
    yield connector
    connector.close()


@pytest.fixture
def conn2(redis_nodes: list[Node]) -> Iterator[Connector]:
    connector = Connector(redis_nodes)
    yield connector
    connector.close()


def test_a_node_is_one_hash_under_its_queue_hash_tag(conn: Connector, redis_node: Node) -> None:
    queue, flow_id = f"q-{uuid.uuid4().hex[:8]}", flow()
    name = keys.flow_node(queue, flow_id, 4)
    assert name == f"sergeant:{{{queue}}}:flow:{flow_id}:4"
    conn.hold(queue, flow_id, 4, b"next", 2, ttl_seconds=60.0)
    conn.advance(queue, flow_id, 4, 0, b"v0", ttl_seconds=60.0)
    client = raw(redis_node)
    fields = hash_of(client, name)
    entry = fields.pop(b"p")
    assert fields == {b"n": b"2", b"c": b"1", b"v:0": b"v0"}  # not released: no 'r'
    assert entry[entries.HEADER :] == b"next"
    assert entry[:1] == b"N"
    assert 0 < client.pttl(name) <= 60_000
    conn.advance(queue, flow_id, 4, 1, b"v1", ttl_seconds=60.0)
    fields = hash_of(client, name)
    assert fields.get(b"r") == b"1"
    assert b"p" not in fields  # the entry is on the ready list now
    client.close()


def test_a_release_wakes_a_blocked_lease(conn: Connector) -> None:
    queue, flow_id = f"q-{uuid.uuid4().hex[:8]}", flow()
    conn.hold(queue, flow_id, 1, b"next", 1)
    leased: list[Delivery] = []
    waiter = threading.Thread(
        target=lambda: leased.extend(conn.lease_many(queue, 1, "w", 30.0, block_seconds=10.0))
    )
    waiter.start()
    conn.advance(queue, flow_id, 1, 0, b"v")
    waiter.join(timeout=15)
    assert [d.payload for d in leased] == [b"next"]
    assert conn.ack_many(queue, leased) == 1


def test_on_two_servers_a_node_and_its_item_live_where_crc32_says(
    conn2: Connector, redis_nodes: list[Node]
) -> None:
    queue = f"q-{uuid.uuid4().hex[:8]}"
    clients = [raw(node) for node in redis_nodes]
    for _ in range(8):
        flow_id = flow()
        home = zlib.crc32(f"{flow_id}:3".encode()) % 2
        conn2.hold(queue, flow_id, 3, b"next", 1)
        conn2.advance(queue, flow_id, 3, 0, b"v")
        name = keys.flow_node(queue, flow_id, 3)
        assert [c.exists(name) for c in clients] == [home == 0, home == 1]
        ready = keys.queue_keys(queue).normal
        assert [c.llen(ready) for c in clients] == [int(home == 0), int(home == 1)]
        assert conn2.pop_many(queue, 10) == [b"next"]
    for client in clients:
        client.close()


def test_a_hold_needs_a_member_and_a_known_priority(conn: Connector) -> None:
    with pytest.raises(ConfigError, match="needed"):
        conn.hold("q", flow(), 1, b"next", 0)
    with pytest.raises(ConfigError, match="priority"):
        conn.hold("q", flow(), 1, b"next", 1, "LOW")  # type: ignore[arg-type]
