"""The Redis push (``sergeant.connector.redis.push``): every case leaves exactly what
one ``push.lua`` call leaves (entries in order, delayed scores, wake tokens), and
stays one transaction."""

from __future__ import annotations

import time
import typing
from collections.abc import Iterator

import pytest

from sergeant.connector.redis import Connector, entries, keys, push
from sergeant.errors import ConnectorError

Node = dict[str, object]
SIZES = (1, 99, 100, 2001, 10_001)
# Wake tokens already there, so the cap on them (LTRIM) shows.
EARLIER_TOKENS = 10


@pytest.fixture
def conn(redis_node: Node) -> Iterator[Connector]:
    connector = Connector([redis_node])
    yield connector
    connector.close()


def contents(conn: Connector, k: keys.QueueKeys) -> dict[str, typing.Any]:
    """What each key of a queue holds, by field name (lists, scored sets, absent)."""
    client = conn._all()[0].client
    held: dict[str, typing.Any] = {}
    for field, name in zip(k._fields, k, strict=True):
        kind = client.type(name)
        if kind == b"list":
            held[field] = client.lrange(name, 0, -1)
        elif kind == b"zset":
            held[field] = client.zrange(name, 0, -1, withscores=True)
        else:
            held[field] = kind
    return held


def seeded(conn: Connector, name: str) -> keys.QueueKeys:
    k = keys.queue_keys(name)
    conn._all()[0].client.rpush(k.wake, *["1"] * EARLIER_TOKENS)
    return k


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("delayed", [False, True], ids=["ready", "delayed"])
@pytest.mark.parametrize("high", [True, False], ids=["HIGH", "NORMAL"])
@pytest.mark.parametrize("lane_busy", [False, True], ids=["lane-free", "lane-busy"])
def test_every_push_leaves_what_push_lua_leaves(
    conn: Connector, queue: str, size: int, delayed: bool, high: bool, lane_busy: bool
) -> None:
    node = conn._all()[0]
    assert node.lane is not None
    items = entries.NewEntries(conn._ids, b"H" if high else b"N", [b"%d" % i for i in range(size)])
    eta = time.time() + 3600 if delayed else 0.0
    expected_keys, pushed_keys = seeded(conn, queue + "-lua"), seeded(conn, queue)
    with node:
        assert node.scripts.push(expected_keys, high, eta, items.made()) == size
    if lane_busy:
        node.lane._lock.acquire()  # another thread is on the lane
    try:
        assert push.push(node, pushed_keys, high, eta, items) == size
    finally:
        if lane_busy:
            node.lane._lock.release()
    assert contents(conn, pushed_keys) == contents(conn, expected_keys)


@pytest.mark.parametrize("size", [1, 100])
def test_an_error_running_a_lane_push_is_raised(conn: Connector, queue: str, size: int) -> None:
    """An error inside a transaction comes back in EXEC's reply: it must not pass."""
    node = conn._all()[0]
    k = keys.queue_keys(queue)
    node.client.set(k.normal, b"not a list")
    with pytest.raises(ConnectorError, match="WRONGTYPE"):
        push.push(node, k, False, 0.0, entries.NewEntries(conn._ids, b"N", [b"x"] * size))
    node.client.delete(k.normal)
    conn.push(queue, b"y", priority="HIGH")  # the lane still works
    assert conn.pop_many(queue, 1) == [b"y"]
