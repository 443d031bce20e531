"""A large leased batch's entries live in the batch's own list (``keys.batch_list``),
moved there inside Redis and read back beside the script; a small one's are packed into
its record. Every way a batch ends (acknowledged, released, reclaimed) deletes them
with the record."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import msgpack
import pytest
import redis

from sergeant.connector.redis import Connector, keys
from sergeant.connector.redis.lease_script import LISTED_FROM
from sergeant.errors import ConnectionLost
from tests.servers import wait_until

Node = dict[str, object]
OWNER = "batch-test"
LARGE = [b"%d" % i for i in range(LISTED_FROM)]


@pytest.fixture
def raw(redis_node: Node) -> Iterator[redis.Redis]:
    client = redis.Redis(host=str(redis_node["host"]), port=int(str(redis_node["port"])))
    yield client
    client.close()


@pytest.fixture
def worker(redis_node: Node) -> Iterator[Connector]:
    conn = Connector([redis_node])
    conn.lease_many("batch-test-warm-up", 1, OWNER, 1.0)  # loads the script: no NOSCRIPT
    yield conn
    conn.close()


def _batch_lists(raw: redis.Redis, queue: str) -> list[bytes]:
    return sorted(raw.scan_iter(match=f"sergeant:{{{queue}}}:batch:*"))


def test_a_large_batch_lives_in_its_own_list_until_it_is_acknowledged(
    worker: Connector, raw: redis.Redis, queue: str
) -> None:
    worker.push_many(queue, LARGE)
    leased = worker.lease_many(queue, len(LARGE), OWNER, 30.0)
    assert [d.payload for d in leased] == LARGE
    k = keys.queue_keys(queue)
    batch = keys.batch_list(k, leased[0].token)
    assert raw.llen(batch) == len(LARGE)
    assert raw.hget(k.leases, str(leased[0].token)) is None  # no packed copy
    assert worker.ack_many(queue, leased[:1]) == 1
    assert raw.llen(batch) == len(LARGE)  # a partial acknowledgement leaves it as it is
    assert worker.ack_many(queue, leased[1:]) == len(LARGE) - 1
    assert _batch_lists(raw, queue) == []
    assert raw.hkeys(k.leases) == [b"#seq"]
    assert worker.leased_count(queue) == 0


def test_a_small_batch_is_packed_into_its_record(
    worker: Connector, raw: redis.Redis, queue: str
) -> None:
    worker.push_many(queue, [b"a", b"b"])
    leased = worker.lease_many(queue, 2, OWNER, 30.0)
    k = keys.queue_keys(queue)
    assert raw.hget(k.leases, str(leased[0].token)) is not None
    assert _batch_lists(raw, queue) == []
    assert worker.ack_many(queue, leased) == 2
    assert raw.hkeys(k.leases) == [b"#seq"]


@pytest.mark.parametrize("size", [4, LISTED_FROM + 4])
def test_released_and_reclaimed_batches_go_back_whole_and_leave_nothing(
    worker: Connector, raw: redis.Redis, queue: str, size: int
) -> None:
    payloads = [b"%d" % i for i in range(size)]
    worker.push_many(queue, payloads)
    first = worker.lease_many(queue, 2, OWNER, 30.0)
    assert worker.release_many(queue, first[1:]) == 1
    assert worker.ack_many(queue, first[:1]) == 1
    short = worker.lease_many(queue, size, OWNER, 0.05)
    assert [d.payload for d in short] == payloads[1:]
    time.sleep(0.2)  # the lease runs out (server clock): a worker that died
    assert worker.reclaim_expired(queue, 10).requeued == size - 1
    again = worker.lease_many(queue, size, OWNER, 30.0)
    assert [(d.payload, d.deliveries) for d in again] == [(p, 2) for p in payloads[1:]]
    worker.ack_many(queue, again)
    assert _batch_lists(raw, queue) == []
    assert raw.hkeys(keys.queue_keys(queue).leases) == [b"#seq"]


def test_a_lease_works_for_a_user_that_may_not_sort(
    redis_node: Node, raw: redis.Redis, queue: str
) -> None:
    """SORT is in ACL category @dangerous: where a user may not run it, the script
    takes the entries through itself instead."""
    user, password = f"nosort-{uuid.uuid4().hex[:6]}", "secret-pass"
    raw.acl_setuser(
        user,
        enabled=True,
        passwords=[f"+{password}"],
        keys=["*"],
        channels=["*"],
        commands=["+@all", "-sort"],
    )
    try:
        limited = Connector([{**redis_node, "username": user, "password": password}])
        limited.lease_many("batch-test-warm-up", 1, OWNER, 1.0)
        limited.push_many(queue, LARGE)
        leased = limited.lease_many(queue, len(LARGE), OWNER, 30.0)
        assert [d.payload for d in leased] == LARGE
        batch = keys.batch_list(keys.queue_keys(queue), leased[0].token)
        assert raw.llen(batch) == len(LARGE)
        assert limited.ack_many(queue, leased) == len(LARGE)
        limited.close()
    finally:
        raw.acl_deluser(user)


def test_a_batch_recorded_by_the_previous_layout_is_reclaimed(
    worker: Connector, raw: redis.Redis, queue: str
) -> None:
    """A batch leased by a worker of the previous version (entries packed into the
    leases hash) is still requeued when its lease runs out, during an upgrade."""
    worker.push_many(queue, [b"x"])
    (fresh,) = worker.lease_many(queue, 1, OWNER, 30.0)
    k = keys.queue_keys(queue)
    entry = b"N" + fresh.item_id.encode() + b"0000" + b"old-payload"
    token = "987654321"
    packed = msgpack.packb([entry], use_bin_type=False)  # as cmsgpack packed it
    raw.hset(k.leases, mapping={
        token: packed, f"{token}:f": "1", f"{token}:n": 1, f"{token}:o": OWNER, f"{token}:a": 0,
    })  # fmt: skip
    raw.zadd(k.leased, {token: 1.0})  # long expired
    raw.incrby(k.leased_count, 1)
    assert worker.reclaim_expired(queue, 10).requeued == 1
    (again,) = worker.lease_many(queue, 1, OWNER, 30.0)
    assert (again.payload, again.deliveries) == (b"old-payload", 2)
    worker.ack_many(queue, [fresh, again])
    assert raw.hkeys(k.leases) == [b"#seq"]


@pytest.mark.parametrize(("lost", "again"), [(3, LISTED_FROM), (LISTED_FROM, 3)])
def test_a_lost_lease_repeated_in_the_other_form_hands_out_its_batch(
    worker: Connector, queue: str, lost: int, again: int
) -> None:
    """The call that repeats a lost lease may take the other form (small and packed,
    large and listed) than the lost one did: it still gets the very batch."""
    payloads = [b"%d" % i for i in range(lost)]
    worker.push_many(queue, payloads)
    finish = worker.start_ack_and_lease(queue, (), lost, OWNER, 30.0)
    wait_until(lambda: worker.leased_count(queue) == lost, timeout=10)
    lane = worker._all()[0].lane
    assert lane is not None
    lane.close()  # the reply is lost, as after a dropped connection
    with pytest.raises(ConnectionLost):
        finish()
    _, leased = worker.ack_and_lease(queue, (), again, OWNER, 30.0)
    assert [d.payload for d in leased] == payloads
    assert worker.ack_many(queue, leased) == lost
    assert worker.leased_count(queue) == 0


def test_an_acknowledgement_riding_a_lease_reads_its_record_in_the_lease_s_own_read(
    worker: Connector, raw: redis.Redis, queue: str
) -> None:
    """One-by-one consuming sends one script per task (the last task's acknowledgement
    and the next lease): the acknowledged batch's record comes in the lease's HMGET,
    not in one of its own."""
    worker.push_many(queue, [b"a", b"b", b"c"])
    leased = worker.lease_many(queue, 1, OWNER, 30.0)
    raw.config_resetstat()
    acked, more = worker.ack_and_lease(queue, leased, 1, OWNER, 30.0)
    assert (acked, [d.payload for d in more]) == (1, [b"b"])
    stats = raw.info("commandstats")
    assert stats["cmdstat_hmget"]["calls"] == 1
    assert "cmdstat_hget" not in stats
    assert worker.ack_and_lease(queue, leased, 1, OWNER, 30.0)[0] == 0  # fenced off: gone
    assert worker.ack_many(queue, more) == 1
    assert worker.leased_count(queue) == 1


def test_a_lease_reads_the_records_of_every_acknowledgement_it_carries_in_its_own_read(
    worker: Connector, raw: redis.Redis, queue: str
) -> None:
    """With pulls sent ahead, one lease can carry the acknowledgements of several
    one-task batches: all their records come in the lease's one HMGET."""
    worker.push_many(queue, [b"a", b"b", b"c", b"d"])
    leased = [d for _ in range(3) for d in worker.lease_many(queue, 1, OWNER, 30.0)]
    assert len({d.token for d in leased}) == 3
    raw.config_resetstat()
    acked, more = worker.ack_and_lease(queue, leased, 1, OWNER, 30.0)
    assert (acked, [d.payload for d in more]) == (3, [b"d"])
    assert raw.info("commandstats")["cmdstat_hmget"]["calls"] == 1
    raw.config_resetstat()
    assert worker.ack_many(queue, leased) == 0  # fenced off: all three are gone
    assert worker.ack_many(queue, more) == 1
    assert raw.info("commandstats")["cmdstat_hmget"]["calls"] == 2  # one per script call
    assert worker.leased_count(queue) == 0


def test_a_batch_named_twice_in_one_acknowledgement_is_settled_once_per_slot(
    worker: Connector, raw: redis.Redis, queue: str
) -> None:
    """The records are read ahead of settling, but a token's second pair must see what
    its first changed: slot 1 twice counts once, and the batch then ends."""
    worker.push_many(queue, [b"a", b"b"])
    leased = worker.lease_many(queue, 2, OWNER, 30.0)
    token = leased[0].token
    k = keys.queue_keys(queue)
    scripts = worker._all()[0].scripts
    assert scripts.ack(k, [token, "1", token, "1-2"]) == 2
    assert raw.hkeys(k.leases) == [b"#seq"]
    assert raw.zcard(k.leased) == 0
    assert worker.leased_count(queue) == 0
