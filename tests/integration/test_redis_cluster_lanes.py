"""Leases on a Redis Cluster go on the lane of the queue's primary (a large batch in
its own list, as on one server); when the queue's slot moves to another primary, the
calls answered MOVED go again through redis-py, and when a lane's connection breaks
the lease is repeated; either way no item is lost or handed out twice."""

from __future__ import annotations

import time

import redis
import redis.crc

from sergeant.connector import Connector, Delivery, create
from sergeant.connector.redis import cluster_lanes, keys
from sergeant.errors import ConnectionLost
from tests.redis_servers import RedisClusterServers


def _holder(primaries: list[redis.Redis], slot: int) -> redis.Redis:
    [holder] = [p for p in primaries if int(p.cluster("COUNTKEYSINSLOT", slot)) > 0]
    return holder


def _move_slot(
    primaries: list[redis.Redis], slot: int, source: redis.Redis, target: redis.Redis
) -> None:
    """Move ``slot`` and its keys from ``source`` to ``target``, as a resharding does."""
    source_id, target_id = source.cluster("MYID"), target.cluster("MYID")
    target.cluster("SETSLOT", slot, "IMPORTING", source_id)
    source.cluster("SETSLOT", slot, "MIGRATING", target_id)
    port = target.connection_pool.connection_kwargs["port"]
    for _ in range(100):  # bounded: a queue's slot holds a few dozen keys
        moving = source.cluster("GETKEYSINSLOT", slot, 100)
        if not moving:
            break
        source.migrate("127.0.0.1", port, moving, 0, 5000)
    for primary in primaries:
        primary.cluster("SETSLOT", slot, "NODE", target_id)


def _payloads(deliveries: list[Delivery]) -> list[bytes]:
    return [d.payload for d in deliveries]


def test_leases_follow_a_queue_whose_slot_moves_to_another_primary(
    redis_cluster: RedisClusterServers, redis_cluster_url: str
) -> None:
    connector: Connector = create("redis", {"url": redis_cluster_url})
    queue, owner = "moving", "w"
    k = keys.queue_keys(queue)
    slot = redis.crc.key_slot(k.normal.encode())
    connector.push_many(queue, [b"%d" % i for i in range(600)])
    primaries = redis_cluster.primary_clients()
    source = _holder(primaries, slot)
    target = next(p for p in primaries if p is not source)
    first = connector.lease_many(queue, 200, owner, 30.0)
    # A large batch on the lane: its entries in its own list, on the queue's primary.
    assert source.exists(keys.batch_list(k, first[0].token))
    _move_slot(primaries, slot, source, target)
    try:
        # The batch held on the old primary moved with the queue: acknowledged there.
        acked, second = connector.ack_and_lease(queue, first, 200, owner, 30.0)
        assert (acked, len(second)) == (200, 200)
        time.sleep(cluster_lanes.OFF_SECONDS)  # the lanes are back, to the new primary
        third = connector.lease_many(queue, 200, owner, 30.0)
        assert target.exists(keys.batch_list(k, third[0].token))
        got = _payloads(first + second + third)
        assert sorted(got) == sorted(b"%d" % i for i in range(600))
        assert connector.ack_many(queue, second + third) == 400
        assert connector.length(queue) == connector.leased_count(queue) == 0
    finally:
        _move_slot(primaries, slot, target, source)  # the session's cluster as it was
        connector.close()
        for primary in primaries:
            primary.close()


def test_a_lease_whose_lane_connection_broke_is_repeated_with_its_batch(
    redis_cluster: RedisClusterServers, redis_cluster_url: str
) -> None:
    connector: Connector = create("redis", {"url": redis_cluster_url})
    queue, owner = "broken-lane", "w"
    connector.push_many(queue, [b"%d" % i for i in range(300)])
    got = _payloads(connector.lease_many(queue, 100, owner, 30.0))
    primaries = redis_cluster.primary_clients()
    for primary in primaries:
        primary.client_kill_filter(_type="normal", skipme=True)
    for _ in range(3):  # bounded: the first call may meet the killed connection
        try:
            got += _payloads(connector.lease_many(queue, 100, owner, 30.0))
        except ConnectionLost:
            continue
    while len(got) < 300:  # the rest, whichever path each call took
        more = connector.lease_many(queue, 100, owner, 30.0)
        if not more:
            break
        got += _payloads(more)
    assert sorted(got) == sorted(b"%d" % i for i in range(300))
    assert connector.leased_count(queue) == 300
    connector.close()
    for primary in primaries:
        primary.close()


def _calls(primaries: list[redis.Redis], command: str) -> int:
    stats = [p.info("commandstats").get(f"cmdstat_{command}", {}) for p in primaries]
    return sum(int(s.get("calls", 0)) for s in stats)


def test_a_big_push_on_a_cluster_is_plain_rpushes_on_the_queue_primary(
    redis_cluster: RedisClusterServers, redis_cluster_url: str
) -> None:
    """A ready push of 100 entries or more goes as on one server: MULTI, its RPUSHes,
    EXEC on the lane of the queue's primary, not a script copying every entry."""
    connector: Connector = create("redis", {"url": redis_cluster_url})
    primaries = redis_cluster.primary_clients()
    try:
        connector.push_many("plain-push", [b"warm"])  # connected, the library loaded
        for primary in primaries:
            primary.config_resetstat()
        assert connector.push_many("plain-push", [b"%d" % i for i in range(25_000)]) == 25_000
        assert _calls(primaries, "fcall") + _calls(primaries, "evalsha") == 0
        assert _calls(primaries, "exec") == 1
        assert connector.length("plain-push") == 25_001
        leased = connector.lease_many("plain-push", 25_001, "w", 30.0)
        assert [d.payload for d in leased] == [b"warm", *(b"%d" % i for i in range(25_000))]
    finally:
        connector.close()
        for primary in primaries:
            primary.close()


def test_a_big_push_redirected_by_a_moved_slot_lands_once(
    redis_cluster: RedisClusterServers, redis_cluster_url: str
) -> None:
    """The lane's primary answers MOVED once the queue's slot has moved: the push did
    not run there, and goes again through redis-py, which follows the redirection."""
    connector: Connector = create("redis", {"url": redis_cluster_url})
    queue = "moving-push"
    slot = redis.crc.key_slot(keys.queue_keys(queue).normal.encode())
    primaries = redis_cluster.primary_clients()
    connector.push_many(queue, [b"first"])  # the lane of the queue's primary is known
    source = _holder(primaries, slot)
    target = next(p for p in primaries if p is not source)
    _move_slot(primaries, slot, source, target)
    source.config_resetstat()
    try:
        assert connector.push_many(queue, [b"%d" % i for i in range(500)]) == 500
        # The lane's MULTI met the old primary: its RPUSHes refused, its EXEC ran nothing.
        refused = source.info("commandstats")
        assert refused["cmdstat_rpush"]["rejected_calls"] >= 1
        assert refused["cmdstat_rpush"]["calls"] == 0
        assert refused["cmdstat_exec"]["failed_calls"] == 1
        assert connector.length(queue) == 501
        assert int(source.cluster("COUNTKEYSINSLOT", slot)) == 0
        leased = connector.lease_many(queue, 501, "w", 30.0)
        assert sorted(d.payload for d in leased) == sorted(
            [b"first", *(b"%d" % i for i in range(500))]
        )
    finally:
        _move_slot(primaries, slot, target, source)
        connector.close()
        for primary in primaries:
            primary.close()
