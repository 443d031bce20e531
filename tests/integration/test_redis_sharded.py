"""A sharded queue on the three-node Redis Cluster: spread over every primary, and a
queue pushed before sharding was turned on is still consumed after."""

from __future__ import annotations

import logging

import pytest
import redis.crc

from sergeant.connector import create
from sergeant.connector.redis import keys, shard_record, shards
from tests.redis_servers import RedisClusterServers


def test_a_sharded_queue_lands_on_every_primary(
    redis_cluster: RedisClusterServers, redis_cluster_url: str
) -> None:
    connector = create("redis", {"url": redis_cluster_url + "?shards=3"})
    assert not connector.ordered
    for start in range(0, 3000, 100):
        connector.push_many("spread", [b"%d" % i for i in range(start, start + 100)])
    slots = [shards.slot_of(tag) for tag in shards.shard_tags("spread", 3)]
    primaries = redis_cluster.primary_clients()
    holding = []
    for primary in primaries:
        # each primary holds the keys of exactly one shard, and some items of the queue
        counts = [int(primary.cluster("COUNTKEYSINSLOT", s)) for s in slots]
        holding.append([index for index, count in enumerate(counts) if count])
        assert int(primary.dbsize()) > 0
    assert all(len(h) == 1 for h in holding)
    assert sorted(h[0] for h in holding) == [0, 1, 2]
    split = []
    for primary, (shard,) in zip(primaries, holding, strict=True):
        normal = keys.queue_keys(shards.shard_tags("spread", 3)[shard]).normal
        split.append(int(primary.llen(normal)))
    print(f"split over three primaries: {split}")
    assert sum(split) == 3000
    assert all(800 <= held <= 1200 for held in split), split
    leased = connector.lease_many("spread", 3000, "w", 30.0)
    assert sorted({d.node for d in leased}) == [0, 1, 2]
    assert len({d.payload for d in leased}) == 3000
    assert connector.ack_many("spread", leased) == 3000
    assert connector.length("spread") == connector.leased_count("spread") == 0
    connector.close()
    for primary in primaries:
        primary.close()


def test_a_queue_pushed_before_sharding_is_consumed_after(redis_cluster_url: str) -> None:
    before = create("redis", {"url": redis_cluster_url})
    before.push_many("legacy", [b"old-%d" % i for i in range(50)])
    before.push_many("legacy", [b"old-high"], priority="HIGH")
    before.push_many("legacy", [b"old-late"], consumable_from=1.0)  # long due
    before.close()
    after = create("redis", {"url": redis_cluster_url, "shards": 3})
    assert after.length("legacy") == 52
    after.push_many("legacy", [b"new-%d" % i for i in range(30)])
    got: list[bytes] = []
    while True:
        leased = after.lease_many("legacy", 7, "w", 30.0)
        if not leased:
            break
        got += [d.payload for d in leased]
        assert after.ack_many("legacy", leased) == len(leased)
    assert sorted(got) == sorted(
        [b"old-%d" % i for i in range(50)]
        + [b"old-high", b"old-late"]
        + [b"new-%d" % i for i in range(30)]
    )
    assert after.length("legacy", include_delayed=True) == 0
    after.close()


def test_raising_shards_keeps_every_item_pushed_before(redis_cluster_url: str) -> None:
    """A queue pushed with shards=2 (ready, HIGH, delayed, leased) and then read with
    shards=3: every item is still there and handed out once; with the tags chosen per
    count, 'emails' used to keep one of its two shards where three did not look."""
    before = create("redis", {"url": redis_cluster_url, "shards": 2})
    before.push_many("emails", [b"old-%d" % i for i in range(200)])
    before.push_many("emails", [b"old-high"], priority="HIGH")
    before.push_many("emails", [b"old-late"], consumable_from=1.0)  # long due
    held = before.lease_many("emails", 20, "w-old", 30.0)
    assert len(held) == 20
    after = create("redis", {"url": redis_cluster_url, "shards": 3})
    assert after.length("emails", include_delayed=True) == 182
    assert after.leased_count("emails") == 20
    after.push_many("emails", [b"new-%d" % i for i in range(30)])
    got: list[bytes] = []
    for _ in range(100):  # bounded: 212 items in leases of up to 7
        leased = after.lease_many("emails", 7, "w-new", 30.0)
        if not leased:
            break
        got += [d.payload for d in leased]
        assert after.ack_many("emails", leased) == len(leased)
    # the leases held under two shards are settled by that connector, as ever
    assert before.ack_many("emails", held) == 20
    got += [d.payload for d in held]
    assert sorted(got) == sorted(
        [b"old-%d" % i for i in range(200)]
        + [b"old-high", b"old-late"]
        + [b"new-%d" % i for i in range(30)]
    )
    assert after.length("emails", include_delayed=True) == after.leased_count("emails") == 0
    before.close()
    after.close()


def test_a_worker_with_fewer_shards_says_what_waits_in_the_others(
    redis_cluster: RedisClusterServers, redis_cluster_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Lowering shards leaves the last shards unread: a worker with the lower count
    logs it in one line while they hold items (its reclaim, at each heartbeat), and
    one more when they are empty; the record of the larger count stays."""
    wide = create("redis", {"url": redis_cluster_url, "shards": 3})
    wide.push_many("lowered", [b"%d" % i for i in range(300)])
    narrow = create("redis", {"url": redis_cluster_url, "shards": 2})
    caplog.set_level(logging.INFO, logger="sergeant.connector.redis")
    for _ in range(2):  # unchanged the second time: no second line
        narrow.reclaim_expired("lowered", 0)
    unread = [r for r in caplog.records if getattr(r, "event", "") == "shards_unread"]
    assert len(unread) == 1
    assert unread[0].levelno == logging.ERROR
    waiting = 300 - narrow.length("lowered")
    assert waiting > 0
    assert f"holds {waiting} items in shards 2-2" in unread[0].getMessage()
    assert "run workers with shards=3" in unread[0].getMessage()
    for _ in range(20):  # bounded: 300 items in leases of up to 100
        leased = wide.lease_many("lowered", 100, "w", 30.0)
        if not leased:
            break
        assert wide.ack_many("lowered", leased) == len(leased)
    narrow.push_many("lowered", [b"after"])  # pushes with two shards keep the record
    for _ in range(2):
        narrow.reclaim_expired("lowered", 0)
    drained = [r for r in caplog.records if getattr(r, "event", "") == "shards_drained"]
    assert len(drained) == 1
    assert len([r for r in caplog.records if getattr(r, "event", "") == "shards_unread"]) == 1
    record = shard_record.shards_key("lowered")
    slot = redis.crc.key_slot(record.encode())
    primaries = redis_cluster.primary_clients()
    [holder] = [p for p in primaries if int(p.cluster("COUNTKEYSINSLOT", slot))]
    assert holder.zscore(record, "largest") == 3.0
    for primary in primaries:
        primary.close()
    wide.close()
    narrow.close()


def test_pulls_sent_ahead_on_a_sharded_queue_settle_every_shard_and_drain_it(
    redis_cluster_url: str,
) -> None:
    """A worker's pull sent ahead carries acknowledgements of any shard: those of the
    shard it leases from go in its script, the others' first; each item once."""
    connector = create("redis", {"url": redis_cluster_url, "shards": 3})
    connector.push_many("ahead", [b"%d" % i for i in range(900)])
    held = connector.lease_many("ahead", 100, "w", 30.0)
    seen, acked_total = [d.payload for d in held], 0
    for _ in range(60):  # bounded: 900 items in pulls of up to 100
        finish = connector.start_ack_and_lease("ahead", held, 100, "w", 30.0)
        acked, held = finish()
        acked_total += acked
        seen += [d.payload for d in held]
        if not held:
            break
    assert sorted(seen) == sorted(b"%d" % i for i in range(900))
    assert acked_total == 900
    assert connector.length("ahead") == connector.leased_count("ahead") == 0
    connector.close()


def test_a_pull_takes_its_acknowledgements_to_their_shard_in_one_script(
    redis_cluster: RedisClusterServers, redis_cluster_url: str
) -> None:
    """A worker's pulls start on the shard of the acknowledgements they carry (three in
    four), so most pulls are one script on one primary; every shard is still visited."""
    connector = create("redis", {"url": redis_cluster_url, "shards": 3})
    connector.push_many("folded", [b"%d" % i for i in range(3000)])
    primaries = redis_cluster.primary_clients()
    for primary in primaries:
        primary.config_resetstat()
    held, pulls, nodes = connector.lease_many("folded", 100, "w", 30.0), 1, set()
    for _ in range(100):  # bounded: 3000 items in pulls of up to 100
        _acked, held = connector.ack_and_lease("folded", held, 100, "w", 30.0)
        pulls += 1
        nodes |= {d.node for d in held}
        if not held:
            break
    assert connector.length("folded") == connector.leased_count("folded") == 0
    assert nodes == {0, 1, 2}
    scripts = sum(int(p.info("commandstats")["cmdstat_fcall"]["calls"]) for p in primaries)
    # Unfolded, every pull would be two scripts (its acknowledgements, its lease), plus
    # the few of a shard running empty and each shard's token reservation.
    assert scripts <= 1.75 * pulls, (scripts, pulls)
    connector.close()
    for primary in primaries:
        primary.close()


def test_pops_sent_ahead_on_a_sharded_queue_drain_it_each_item_once(
    redis_cluster_url: str,
) -> None:
    """At-most-once pulls sent ahead: the first shard's pop is in flight, and one that
    brings too few is topped up from the other shards when it is read."""
    connector = create("redis", {"url": redis_cluster_url, "shards": 3})
    connector.push_many("popped", [b"%d" % i for i in range(600)])
    started = [connector.start_pop("popped", 250) for _ in range(2)]  # in flight together
    got = [item for finish in started for item in finish()]
    assert len(got) == 500  # each read topped up to its 250 from the other shards
    got += connector.start_pop("popped", 250)()
    assert sorted(got) == sorted(b"%d" % i for i in range(600))
    assert connector.start_pop("popped", 10)() == []
    connector.close()
