"""Client-chosen lease tokens (``sergeant.connector.redis.tokens``): a lease call whose
reply was lost is repeated with its token and gets exactly what the lost reply carried,
so a stall or a dropped connection neither strands a batch nor reads as rejected
acknowledgements."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from sergeant.connector.redis import Connector
from sergeant.errors import ConnectionLost
from tests.servers import wait_until

Node = dict[str, object]
OWNER = "token-test"


@pytest.fixture
def pair(redis_node: Node) -> Iterator[tuple[Connector, Connector, redis.Redis]]:
    worker, observer = Connector([redis_node]), Connector([redis_node])
    raw = redis.Redis(host=str(redis_node["host"]), port=int(str(redis_node["port"])))
    worker.lease_many("token-test-warm-up", 1, OWNER, 1.0)  # loads the script: no NOSCRIPT
    yield worker, observer, raw
    worker.close()
    observer.close()
    raw.close()


def _cut_off(worker: Connector) -> None:
    """Drop the worker's hot-path connection with a reply unread, as a fault would."""
    lane = worker._all()[0].lane
    assert lane is not None
    lane.close()


def test_a_lease_whose_reply_was_lost_is_handed_out_again_to_its_caller(
    pair: tuple[Connector, Connector, redis.Redis], queue: str
) -> None:
    worker, observer, _raw = pair
    worker.push_many(queue, [b"a", b"b", b"c"])
    finish = worker.start_ack_and_lease(queue, (), 3, OWNER, 30.0)
    wait_until(lambda: observer.leased_count(queue) == 3, timeout=10)
    _cut_off(worker)
    with pytest.raises(ConnectionLost):
        finish()
    _, again = worker.ack_and_lease(queue, (), 3, OWNER, 30.0)
    assert [d.payload for d in again] == [b"a", b"b", b"c"]
    assert [d.deliveries for d in again] == [1, 1, 1]
    assert observer.leased_count(queue) == 3  # nothing stranded
    assert worker.ack_many(queue, again) == 3
    assert observer.leased_count(queue) == 0


def test_a_repeated_call_reports_the_acknowledgements_the_lost_one_made(
    pair: tuple[Connector, Connector, redis.Redis], queue: str
) -> None:
    worker, observer, _raw = pair
    worker.push_many(queue, [b"a", b"b", b"c"])
    done = worker.lease_many(queue, 2, OWNER, 30.0)
    finish = worker.start_ack_and_lease(queue, done, 1, OWNER, 30.0)
    wait_until(lambda: observer.leased_count(queue) == 1, timeout=10)
    _cut_off(worker)
    with pytest.raises(ConnectionLost):
        finish()
    acked, again = worker.ack_and_lease(queue, done, 1, OWNER, 30.0)
    assert acked == 2  # the lost call's: no "rejected acknowledgement"
    assert [d.payload for d in again] == [b"c"]


def test_a_server_that_lost_its_data_gets_a_fresh_token_block(
    pair: tuple[Connector, Connector, redis.Redis], queue: str
) -> None:
    worker, _observer, raw = pair
    worker.push(queue, b"a")
    [first] = worker.lease_many(queue, 1, OWNER, 30.0)
    raw.flushall()  # what a restart without persistence does
    worker.push(queue, b"b")
    [second] = worker.lease_many(queue, 1, OWNER, 30.0)
    assert second.payload == b"b"
    assert second.token <= int(raw.get(f"sergeant:{{{queue}}}:leases:seq") or 0)
    assert worker.ack_many(queue, [first]) == 0
    assert worker.ack_many(queue, [second]) == 1
