"""Redis-specific behaviour of waiting items (the shared promises are in
``tests/contract/test_waiting.py``): the order across lists and delayed sets, reads
and removals over several chunks, and each server's items on several servers."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from sergeant.connector.redis import Connector, _waiting

Node = dict[str, object]
OWNER = "worker-test"


@pytest.fixture
def conn(redis_node: Node) -> Iterator[Connector]:
    connector = Connector([redis_node])
    yield connector
    connector.close()


@pytest.fixture
def queue() -> str:
    return f"q-{uuid.uuid4().hex[:10]}"


def test_high_ready_then_high_delayed_then_normal(conn: Connector, queue: str) -> None:
    later = time.time() + 3600
    conn.push_many(queue, [b"n-later-2"], consumable_from=later + 1)
    conn.push_many(queue, [b"n-later-1"], consumable_from=later)
    conn.push_many(queue, [b"h-later"], "HIGH", consumable_from=later)
    conn.push_many(queue, [b"n1", b"n2"])
    conn.push_many(queue, [b"h1"], "HIGH")
    found = [item.payload for item in conn.waiting(queue)]
    assert found == [b"h1", b"h-later", b"n1", b"n2", b"n-later-1", b"n-later-2"]
    assert [item.payload for item in conn.waiting(queue, limit=3)] == found[:3]
    assert conn.waiting(queue, limit=0) == []


def test_reads_and_removals_span_chunks(
    conn: Connector, queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_waiting, "READ_CHUNK", 3)
    monkeypatch.setattr(_waiting, "REMOVE_CHUNK", 2)
    payloads = [b"%d" % n for n in range(10)]
    conn.push_many(queue, payloads)
    conn.push_many(queue, [b"later"], consumable_from=time.time() + 3600)
    found = conn.waiting(queue)
    assert [item.payload for item in found] == [*payloads, b"later"]
    assert len(conn.waiting(queue, limit=7)) == 7
    assert conn.remove_waiting(queue, [*found[1::2], found[-1]]) == 6  # odd ones, delayed one
    assert [item.payload for item in conn.waiting(queue)] == payloads[0::2]
    assert conn.length(queue, include_delayed=True) == 5


def test_a_released_item_is_waiting_again_and_removable(conn: Connector, queue: str) -> None:
    conn.push_many(queue, [b"a"])
    (item,) = conn.waiting(queue)
    (delivery,) = conn.lease_many(queue, 1, OWNER, 30.0)
    assert conn.release_many(queue, [delivery]) == 1
    assert conn.remove_waiting(queue, [item]) == 1
    assert conn.length(queue, include_delayed=True) == 0


def test_several_servers_each_list_and_remove_their_own(
    redis_nodes: list[Node], queue: str
) -> None:
    conn = Connector(redis_nodes)
    try:
        for payload in (b"a", b"b", b"c", b"d"):  # a small push goes to one node, each in turn
            conn.push_many(queue, [payload])
        found = conn.waiting(queue)
        assert sorted(item.payload for item in found) == [b"a", b"b", b"c", b"d"]
        assert {item.node for item in found} == {0, 1}
        assert conn.remove_waiting(queue, found) == 4
        assert conn.length(queue, include_delayed=True) == 0
    finally:
        conn.close()
