"""MongoDB-specific behaviour of ``sergeant.connector.mongo``; the contract is in tests/contract."""

from __future__ import annotations

import multiprocessing
import threading
import time
import typing
from collections.abc import Iterator

import pymongo
import pytest

from sergeant.connector import Delivery, create
from sergeant.connector.mongo import Connector
from sergeant.connector.mongo.support import translate_error
from sergeant.errors import BrokerUnavailable, ConfigError, ConnectionLost, ConnectorError
from tests.servers import free_port, wait_until

LEASE = 30.0
QUEUE = "q"


def payloads(count: int, prefix: str = "t") -> list[bytes]:
    return [f"{prefix}{i}".encode() for i in range(count)]


@pytest.fixture
def mongo(mongo_params: dict[str, typing.Any]) -> Iterator[Connector]:
    """A connector on a database of its own."""
    connector = Connector(**mongo_params)
    yield connector
    connector.close()


def raw_database(connector: Connector) -> typing.Any:
    """The pymongo database behind a connector, to inspect or fake a crash."""
    return connector._database()


# -- configuration and reachability ---------------------------------------------------


@pytest.mark.timeout(30)
def test_unreachable_server_raises_broker_unavailable_naming_it() -> None:
    """An address nothing listens on gives BrokerUnavailable with host:port and advice."""
    port = free_port()
    connector = Connector(nodes=[{"host": "127.0.0.1", "port": port, "replica_set": None}])
    with pytest.raises(BrokerUnavailable) as caught:
        connector.ping()
    assert f"127.0.0.1:{port}" in str(caught.value)
    assert "running" in str(caught.value)
    assert isinstance(caught.value.__cause__, pymongo.errors.ServerSelectionTimeoutError)
    with pytest.raises(BrokerUnavailable):
        connector.push(QUEUE, b"x")
    connector.close()


@pytest.mark.timeout(30)
def test_unreachable_url_message_hides_the_password() -> None:
    """A URI's password never appears in an error message."""
    port = free_port()
    connector = Connector(url=f"mongodb://sergeant:s3cret@127.0.0.1:{port}/?authSource=admin")
    with pytest.raises(BrokerUnavailable) as caught:
        connector.length(QUEUE)
    assert f"127.0.0.1:{port}" in str(caught.value)
    assert "s3cret" not in str(caught.value)
    connector.close()


def test_unknown_node_key_is_a_config_error() -> None:
    """A nodes entry with an unknown key names the key and the accepted ones."""
    with pytest.raises(ConfigError, match=r"'password'.*'host', 'port', 'replica_set'"):
        create("mongo", {"nodes": [{"host": "h", "port": 1, "password": "x"}]})


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"nodes": [{"host": "h", "port": 1}], "url": "mongodb://h:1"},
        {"nodes": []},
        {"url": "http://h:1"},
        {"url": "mongodb://h:notaport"},
        {"nodes": [{"host": "h", "port": "27017"}]},
        {"nodes": "h:27017"},
        {"nodes": ["h:27017"]},
    ],
)
def test_bad_params_are_config_errors(params: dict[str, typing.Any]) -> None:
    """Not exactly one of nodes/url, an empty node list or a bad URI is a ConfigError."""
    with pytest.raises(ConfigError):
        create("mongo", params)


def test_url_form_reaches_the_server(mongo_params: dict[str, typing.Any]) -> None:
    """``url`` works as well as ``nodes``, and both see the same data."""
    if "url" in mongo_params:
        url = mongo_params["url"]
    else:
        node = mongo_params["nodes"][0]
        url = f"mongodb://{node['host']}:{node['port']}"
    with Connector(url=url, database=mongo_params["database"]) as by_url:
        by_url.push(QUEUE, b"x")
    with Connector(**mongo_params) as by_nodes:
        assert by_nodes.pop(QUEUE) == b"x"


def test_items_persist_across_connectors(mongo_params: dict[str, typing.Any]) -> None:
    """Items, leases and dead letters outlive the connector that wrote them."""
    with Connector(**mongo_params) as first:
        first.push_many(QUEUE, payloads(3))
        [leased] = first.lease_many(QUEUE, 1, "w", LEASE)
    with Connector(**mongo_params) as second:
        assert second.length(QUEUE) == 2
        assert second.leased_count(QUEUE) == 1
        assert second.ack_many(QUEUE, [leased]) == 1


def _push_in_child(connector: Connector) -> None:
    connector.push(QUEUE, b"from-child")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork() of a threaded parent
def test_connector_made_before_fork_works_in_the_child(mongo: Connector) -> None:
    """A connector used before fork opens its own client in the child."""
    mongo.push(QUEUE, b"from-parent")
    child = multiprocessing.get_context("fork").Process(target=_push_in_child, args=(mongo,))
    child.start()
    child.join(timeout=60)
    assert child.exitcode == 0
    assert mongo.pop_many(QUEUE, 10) == [b"from-parent", b"from-child"]


# -- concurrency ---------------------------------------------------------------------


def _run_threads(target: typing.Callable[[int], None], count: int) -> None:
    threads = [threading.Thread(target=target, args=(slot,)) for slot in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    assert not any(thread.is_alive() for thread in threads)


def test_leases_from_many_connectors_never_duplicate(mongo_params: dict[str, typing.Any]) -> None:
    """Six threads over three connectors lease 3,000 items: each exactly once, in order each."""
    connectors = [Connector(**mongo_params) for _ in range(3)]
    connectors[0].push_many(QUEUE, payloads(3_000))
    results: list[list[Delivery]] = [[] for _ in range(6)]

    def drain(slot: int) -> None:
        connector = connectors[slot % 3]
        while batch := connector.lease_many(QUEUE, 37, f"w{slot}", LEASE):
            results[slot].extend(batch)
            assert connector.ack_many(QUEUE, batch) == len(batch)

    _run_threads(drain, 6)
    everything = [d.payload for chunk in results for d in chunk]
    assert sorted(everything) == sorted(payloads(3_000))
    for chunk in results:  # each caller sees the queue's order
        order = [int(d.payload[1:]) for d in chunk]
        assert order == sorted(order)
    assert all(d.deliveries == 1 for chunk in results for d in chunk)
    assert connectors[0].leased_count(QUEUE) == 0
    for connector in connectors:
        connector.close()


def test_concurrent_pops_and_leases_share_items_once(mongo: Connector) -> None:
    """Poppers and leasers racing on one queue never get the same item."""
    mongo.push_many(QUEUE, payloads(2_000))
    results: list[list[bytes]] = [[] for _ in range(4)]

    def drain(slot: int) -> None:
        while True:
            if slot % 2:
                got = mongo.pop_many(QUEUE, 1 + slot * 10)
            else:
                got = [d.payload for d in mongo.lease_many(QUEUE, 25, f"w{slot}", LEASE)]
            if not got:
                return
            results[slot].extend(got)

    _run_threads(drain, 4)
    everything = [item for chunk in results for item in chunk]
    assert len(everything) == 2_000
    assert set(everything) == set(payloads(2_000))


def test_concurrent_reclaims_take_each_item_once(mongo: Connector) -> None:
    """Several workers reclaiming at once requeue or dead-letter each expired item once."""
    mongo.push_many(QUEUE, payloads(200))
    first = mongo.lease_many(QUEUE, 200, "w", 0.05)
    again = first[:100]
    mongo.release_many(QUEUE, again)
    second = mongo.lease_many(QUEUE, 100, "w", 0.05)
    assert {d.deliveries for d in second} == {1}
    mongo.extend_leases(QUEUE, [*first[100:], *second], 0.05)
    wait_until(lambda: time.time() > max_deadline(mongo), timeout=10, message="leases to expire")
    totals: list[tuple[int, int]] = []
    lock = threading.Lock()

    def reclaim(_slot: int) -> None:
        result = mongo.reclaim_expired(QUEUE, 1)
        with lock:
            totals.append((result.requeued, result.dead_lettered))

    _run_threads(reclaim, 5)
    assert sum(requeued for requeued, _ in totals) == 0
    assert sum(dead for _, dead in totals) == 200
    assert mongo.dead_count(QUEUE) == 200
    assert mongo.leased_count(QUEUE) == 0


def max_deadline(connector: Connector) -> float:
    """The latest lease deadline stored for QUEUE."""
    tasks = raw_database(connector).tasks
    return max(float(d["deadline"]) for d in tasks.find({"queue": QUEUE, "state": "l"}))


# -- ordering and recovery -------------------------------------------------------------


def test_release_keeps_order_at_the_head_of_each_priority(mongo: Connector) -> None:
    """Released items come back before later ones, in their order, behind HIGH items."""
    mongo.push_many(QUEUE, [b"n1", b"n2", b"n3"])
    leased = mongo.lease_many(QUEUE, 2, "w", LEASE)
    mongo.push(QUEUE, b"h1", priority="HIGH")
    assert mongo.release_many(QUEUE, leased) == 2
    assert mongo.pop_many(QUEUE, 10) == [b"h1", b"n1", b"n2", b"n3"]


def test_requeued_dead_items_go_to_the_tail(mongo: Connector) -> None:
    """requeue_dead puts items behind those already waiting, keeping their item ids."""
    mongo.push_many(QUEUE, [b"a", b"b"])
    leased = mongo.lease_many(QUEUE, 2, "w", LEASE)
    assert mongo.dead_letter_many(QUEUE, leased, "max retries", "boom") == 2
    mongo.push(QUEUE, b"c")
    assert mongo.requeue_dead(QUEUE) == 2
    again = mongo.lease_many(QUEUE, 10, "w", LEASE)
    assert [d.payload for d in again] == [b"c", b"a", b"b"]
    assert [d.item_id for d in again[1:]] == [d.item_id for d in leased]


def test_interrupted_dead_letter_move_is_finished_by_reclaim(mongo: Connector) -> None:
    """An item left half-moved by a dead caller reaches the dead letters exactly once."""
    mongo.push(QUEUE, b"x")
    [leased] = mongo.lease_many(QUEUE, 1, "w", LEASE)
    # What _start_moves writes before the caller dies, with the grace already over.
    marks: dict[str, object] = {
        "state": "m",
        "claim": "crashed",
        "reason": "max retries",
        "error": "e",
    }
    marks |= {"dead_at": time.time(), "deadline": time.time() - 1}
    raw_database(mongo).tasks.update_one({"queue": QUEUE, "state": "l"}, {"$set": marks})
    assert mongo.leased_count(QUEUE) == 0
    assert mongo.reclaim_expired(QUEUE, 0) == mongo.reclaim_expired(QUEUE, 0)
    [dead] = mongo.dead_letters(QUEUE)
    assert (dead.item_id, dead.payload, dead.reason) == (leased.item_id, b"x", "max retries")
    assert mongo.dead_count(QUEUE) == 1
    assert raw_database(mongo).tasks.count_documents({"queue": QUEUE}) == 0


def test_foreign_item_ids_are_skipped(mongo: Connector) -> None:
    """Deliveries whose item id this connector never made are stale, not errors."""
    bogus = Delivery(payload=b"x", item_id="not-an-object-id", token=1, deliveries=1)
    assert mongo.ack_many(QUEUE, [bogus]) == 0
    assert mongo.release_many(QUEUE, [bogus]) == 0
    assert mongo.extend_leases(QUEUE, [bogus], LEASE) == 0
    assert mongo.dead_letter_many(QUEUE, [bogus], "test") == 0


def test_expired_key_does_not_count_as_deleted(mongo: Connector) -> None:
    """key_delete of an expired key reports False, like a missing one."""
    mongo.key_set("k", b"v", ttl_seconds=0.05)
    wait_until(lambda: mongo.key_get("k") is None, timeout=10, message="the key to expire")
    assert mongo.key_delete("k") is False


def test_lease_many_polls_until_block_seconds(mongo: Connector) -> None:
    """A polling lease on an empty queue returns [] once block_seconds is over."""
    assert mongo.lease_many(QUEUE, 5, "w", LEASE, block_seconds=0.1) == []
    assert Connector.supports_blocking is False


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (pymongo.errors.ServerSelectionTimeoutError("no servers"), BrokerUnavailable),
        (pymongo.errors.AutoReconnect("connection reset"), ConnectionLost),
        (pymongo.errors.NetworkTimeout("timed out"), ConnectionLost),
        (pymongo.errors.OperationFailure("bad query"), ConnectorError),
    ],
)
def test_driver_errors_map_to_sergeant_errors(
    error: pymongo.errors.PyMongoError, expected: type[ConnectorError]
) -> None:
    """Each pymongo failure becomes the matching ConnectorError subclass, naming the server."""
    translated = translate_error(error, "db.example:27017")
    assert type(translated) is expected
    assert "db.example:27017" in str(translated)
