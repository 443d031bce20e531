"""A full broker refuses new work and keeps serving what it holds (connector level).

Redis: a private server with ``maxmemory`` and ``noeviction``. SQLite: a broker
file on a small tmpfs of the test's own. Each is filled by pushes until the broker
refuses them, then drained through the connector without giving it more room.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import pytest
import redis

from sergeant.connector import Connector, Delivery, create
from sergeant.errors import BrokerFull
from tests.filesystems import SmallFilesystem
from tests.servers import RedisServer

QUEUE = "full"
LEASE = 60.0
#: Pushes per fill attempt, and the bytes of each payload.
BATCH, PAYLOAD = 10, 2000
#: Upper bound on fill attempts: a broker that never fills fails the test, not hangs it.
MAX_BATCHES = 100_000


def fill(connector: Connector) -> tuple[int, BrokerFull]:
    """Push batches until the broker refuses one: (items stored, the refusal)."""
    stored = 0
    for _ in range(MAX_BATCHES):
        try:
            connector.push_many(QUEUE, [os.urandom(PAYLOAD) for _ in range(BATCH)])
        except BrokerFull as exc:
            return stored, exc
        stored += BATCH
    raise AssertionError(f"the broker took {stored} items and never refused one")


def drain(connector: Connector, count: int = 20) -> int:
    """Lease and acknowledge until nothing is left; how many were acknowledged."""
    acked = 0
    for _ in range(MAX_BATCHES):
        leased = connector.lease_many(QUEUE, count, "drainer", LEASE)
        if not leased:
            return acked
        acked += connector.ack_many(QUEUE, leased)
    raise AssertionError("the queue never emptied")


def settle_each_way(connector: Connector) -> list[Delivery]:
    """Extend, release, dead-letter, requeue and acknowledge on the full broker; the
    leases still held (one batch of four) are returned."""
    leased = connector.lease_many(QUEUE, 4, "settler", LEASE)
    assert len(leased) == 4
    assert connector.extend_leases(QUEUE, leased, LEASE) == 4
    assert connector.release_many(QUEUE, leased[:1]) == 1
    assert connector.dead_letter_many(QUEUE, leased[1:2], "max retries", "boom") == 1
    assert connector.ack_many(QUEUE, leased[2:3]) == 1
    assert connector.purge_dead(QUEUE) == 1
    assert connector.reclaim_expired(QUEUE, 0).requeued == 0
    return leased[3:]


# -- Redis --------------------------------------------------------------------------------


def redis_client(server: RedisServer) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=5)


def maxmemory(server: RedisServer) -> str:
    client = redis_client(server)
    try:
        return str(client.config_get("maxmemory")["maxmemory"])
    finally:
        client.close()


def test_full_redis_refuses_every_kind_of_push(full_redis: RedisServer) -> None:
    """Small (plain RPUSH), big (MULTI/EXEC), delayed (script) and chunked pushes are all
    refused with ``BrokerFull``, and none of them stored anything."""
    connector = create("redis", {"nodes": [full_redis.node]})
    try:
        stored, refusal = fill(connector)
        assert "out of memory" in str(refusal)
        assert "maxmemory" in str(refusal)
        # A full Redis hovers at its limit: set it below the memory used, so that every
        # push here is refused, not only most.
        client = redis_client(full_redis)
        client.config_set("maxmemory", int(client.info("memory")["used_memory"]) - (1 << 20))
        client.close()
        later = time.time() + 3600
        pushes: dict[str, Callable[[], int]] = {
            "one": lambda: connector.push_many(QUEUE, [b"x"]),
            "plain": lambda: connector.push_many(QUEUE, [b"x"] * 500),
            "delayed": lambda: connector.push_many(QUEUE, [b"x"] * 5, consumable_from=later),
            "chunked": lambda: connector.push_many(QUEUE, [b"x"] * 4500, consumable_from=later),
        }
        for name, push in pushes.items():
            with pytest.raises(BrokerFull):
                push()
            assert connector.length(QUEUE, include_delayed=True) == stored, name
        with pytest.raises(BrokerFull):
            connector.key_set("result", b"x" * 1000)
    finally:
        connector.close()


def test_full_redis_drains_without_more_memory(full_redis: RedisServer) -> None:
    """Every drain step runs above maxmemory; once drained, pushes are taken again."""
    limit = maxmemory(full_redis)
    connector = create("redis", {"nodes": [full_redis.node]})
    try:
        stored, _ = fill(connector)
        assert stored > 0
        connector.register_worker("worker-1", b'{"id": "worker-1"}', 30)
        assert connector.workers() == [b'{"id": "worker-1"}']
        held = settle_each_way(connector)
        assert connector.ack_many(QUEUE, held) == 1
        popped = connector.pop_many(QUEUE, 5)
        assert len(popped) == 5
        assert drain(connector) == stored - 3 - 5  # one dead-lettered, two acked above
        assert connector.leased_count(QUEUE) == 0
        assert connector.unregister_worker("worker-1")
        connector.push_many(QUEUE, [b"again"] * 100)
        assert connector.length(QUEUE) == 100
        assert maxmemory(full_redis) == limit
    finally:
        connector.close()


def test_scripts_fall_back_on_redis_before_7() -> None:
    """A server older than Redis 7 refuses the flags line: every script runs without it.

    Needs such a server: SERGEANT_TEST_OLD_REDIS_SERVER names its binary.
    """
    binary = os.environ.get("SERGEANT_TEST_OLD_REDIS_SERVER")
    if not binary:
        pytest.skip("set SERGEANT_TEST_OLD_REDIS_SERVER to a redis-server older than 7")
    server = RedisServer()
    server.binary = binary
    server.start()
    connector = create("redis", {"nodes": [server.node]})
    try:
        connector.push_many(QUEUE, [b"a", b"b", b"c", b"d"])
        held = settle_each_way(connector)
        assert connector.ack_many(QUEUE, held) == 1
        connector.register_worker("w", b"{}", 30)
        assert connector.unregister_worker("w")
        lock = connector.lock("old")
        assert lock.acquire(timeout=1, ttl=5)
        assert lock.set_ttl(9)
        assert lock.release()
        assert drain(connector) == 1
    finally:
        connector.close()
        server.close()


# -- SQLite -------------------------------------------------------------------------------


def sqlite_on(filesystem: SmallFilesystem) -> Connector:
    return create("local", {"file_path": filesystem.path("broker.sqlite3")})


def test_full_disk_refuses_pushes_and_drains(small_filesystem: SmallFilesystem) -> None:
    """Pushes fill the disk and are then refused; leases and acknowledgements go on (the
    reserve gives them room), and once drained the file takes pushes again."""
    connector = sqlite_on(small_filesystem)
    try:
        stored, refusal = fill(connector)
        assert "disk is full" in str(refusal)
        assert small_filesystem.free_bytes() == 0
        # Until something drains, a batch like the refused one is refused again (a few
        # bytes may still fit in the slack of the file's last pages: that is room).
        with pytest.raises(BrokerFull):
            connector.push_many(QUEUE, [os.urandom(PAYLOAD) for _ in range(BATCH)])
        assert connector.length(QUEUE) == stored
        held = settle_each_way(connector)
        assert not os.path.exists(small_filesystem.path("broker.sqlite3-reserve"))
        assert connector.ack_many(QUEUE, held) == 1
        assert drain(connector) == stored - 3  # one dead-lettered, two acked above
        connector.push_many(QUEUE, [b"again"] * 100)  # into pages the drain freed
        assert connector.length(QUEUE) == 100
    finally:
        connector.close()


def test_disk_filled_by_another_file_still_drains(small_filesystem: SmallFilesystem) -> None:
    """Something else takes the disk's last byte (a log, say): pushes are refused, the
    queue drains all the same."""
    connector = sqlite_on(small_filesystem)
    try:
        connector.push_many(QUEUE, [os.urandom(PAYLOAD) for _ in range(500)])
        small_filesystem.fill()
        with pytest.raises(BrokerFull):
            connector.push_many(QUEUE, [os.urandom(PAYLOAD) for _ in range(200)])
        assert connector.length(QUEUE) == 500
        assert drain(connector, count=1) == 500
    finally:
        connector.close()


def test_spent_reserve_keeps_room_for_draining(small_filesystem: SmallFilesystem) -> None:
    """Once the reserve is spent and the disk is full again, a push is refused unless
    the file's free pages hold a reserve's worth; drained, the file takes pushes."""
    connector = sqlite_on(small_filesystem)
    try:
        stored, _ = fill(connector)
        assert drain(connector, count=1) == stored  # spends the reserve
        small_filesystem.fill()
        connector.push_many(QUEUE, [os.urandom(PAYLOAD) for _ in range(BATCH)])
        again, refusal = fill(connector)
        assert "reserve" in str(refusal)
        assert "spent" in str(refusal)
        assert drain(connector) == again + BATCH
        assert connector.length(QUEUE) == 0
    finally:
        connector.close()
