"""Redis-specific behaviour of ``sergeant.connector.redis`` (the shared promises are in
``tests/contract``): configuration, error wrapping, script reloading, node layout."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest
import redis

from sergeant.connector import create
from sergeant.connector.redis import Connector, keys
from sergeant.errors import BrokerUnavailable, ConfigError, ConnectionLost, ConnectorError
from tests.servers import RedisServer, free_port

LEASE = 30.0
Node = dict[str, object]


def raw(node: Node, decode: bool = False) -> redis.Redis:
    """A plain redis-py client for one fixture node."""
    return redis.Redis(host=str(node["host"]), port=int(str(node["port"])), decode_responses=decode)


@pytest.fixture
def conn(redis_node: Node) -> Iterator[Connector]:
    """A connector on the single fixture node."""
    connector = Connector([redis_node])
    yield connector
    connector.close()


@pytest.fixture
def conn2(redis_nodes: list[Node]) -> Iterator[Connector]:
    """A connector on the two fixture nodes."""
    connector = Connector(redis_nodes)
    yield connector
    connector.close()


# -- configuration ----------------------------------------------------------------


def test_unknown_node_key_names_the_key_and_the_accepted_ones() -> None:
    """A typo in a node dict is a ConfigError naming it and listing the accepted keys."""
    with pytest.raises(ConfigError, match=r"'db'.*'host', 'port', 'password', 'database'"):
        create("redis", {"nodes": [{"host": "127.0.0.1", "port": 6379, "db": 0}]})


def test_empty_nodes_is_a_config_error() -> None:
    """At least one node is required."""
    with pytest.raises(ConfigError, match="nodes"):
        Connector([])


def test_username_is_accepted(redis_node: Node) -> None:
    """The optional 'username' key is accepted (the default ACL user here)."""
    with Connector([{**redis_node, "username": "default"}]) as connector:
        connector.ping()


# -- errors -----------------------------------------------------------------------


def test_unreachable_node_raises_broker_unavailable_naming_it() -> None:
    """Nothing listening: BrokerUnavailable with host:port and a hint, chained to redis-py."""
    port = free_port()
    connector = Connector([{"host": "127.0.0.1", "port": port, "password": None, "database": 0}])
    with pytest.raises(BrokerUnavailable, match=rf"127\.0\.0\.1:{port}.*running") as info:
        connector.ping()
    assert isinstance(info.value.__cause__, redis.RedisError)
    with pytest.raises(BrokerUnavailable):
        connector.push("q", b"x")


def test_ping_names_the_failing_node_of_several(redis_node: Node) -> None:
    """With one good and one unreachable node, ping names the unreachable one."""
    port = free_port()
    bad = {"host": "127.0.0.1", "port": port, "password": None, "database": 0}
    with (
        Connector([redis_node, bad]) as connector,
        pytest.raises(BrokerUnavailable, match=str(port)),
    ):
        connector.ping()


def test_server_errors_become_connector_errors(conn: Connector, redis_node: Node) -> None:
    """A Redis error reply (here WRONGTYPE) is a plain ConnectorError, chained."""
    raw(redis_node).rpush(keys.key("k"), b"x")
    with pytest.raises(ConnectorError, match="WRONGTYPE") as info:
        conn.key_get("k")
    assert not isinstance(info.value, BrokerUnavailable)
    assert isinstance(info.value.__cause__, redis.ResponseError)


def test_restarted_server_breaks_then_recovers() -> None:
    """After a restart the first call fails as a ConnectorError; the next ones work."""
    server = RedisServer()
    server.start()
    try:
        connector = Connector([server.node])
        connector.push("q", b"before")
        server.restart()
        try:
            connector.push("q", b"after")
        except (ConnectionLost, BrokerUnavailable):  # the pooled connection died with the server
            connector.push("q", b"after")
        assert connector.pop("q") == b"after"
        connector.close()
    finally:
        server.close()


def test_closed_connector_refuses_use(redis_node: Node) -> None:
    """Using a closed connector is a ConnectorError that says so."""
    connector = Connector([redis_node])
    connector.ping()
    connector.close()
    with pytest.raises(ConnectorError, match="closed"):
        connector.ping()


# -- scripts ----------------------------------------------------------------------


def test_scripts_reload_after_script_flush(conn: Connector, redis_node: Node) -> None:
    """SCRIPT FLUSH (or a restart) is survived: NOSCRIPT makes the script load again."""
    conn.push("q", b"a")
    raw(redis_node).script_flush()
    conn.push("q", b"b")
    raw(redis_node).script_flush()
    leased = conn.lease_many("q", 10, "w", LEASE)
    raw(redis_node).script_flush()
    assert conn.ack_many("q", leased) == 2
    raw(redis_node).script_flush()
    conn.push_many("q", [b"x"] * 5000)  # several chunks in one MULTI/EXEC
    assert conn.length("q") == 5000


def test_big_batches_cross_lua_chunk_bounds(conn: Connector) -> None:
    """Batches larger than a Lua unpack() chunk keep order and lose nothing."""
    items = [f"{i}".encode() for i in range(25_000)]
    assert conn.push_many("q", items) == 25_000
    leased = conn.lease_many("q", 12_000, "w", LEASE)
    assert [d.payload for d in leased] == items[:12_000]
    assert conn.release_many("q", leased[:5_000]) == 5_000
    assert conn.extend_leases("q", leased[5_000:], LEASE) == 7_000
    assert conn.ack_many("q", leased[5_000:]) == 7_000
    assert conn.pop_many("q", 30_000) == items[:5_000] + items[12_000:]


# -- layout -------------------------------------------------------------------------


def test_every_queue_key_shares_the_queue_hash_tag(conn: Connector, redis_node: Node) -> None:
    """All keys a queue uses carry the hash tag {queue}, so Redis Cluster works later."""
    conn.push_many("emails", [b"a", b"b", b"c"])
    conn.push("emails", b"later", consumable_from=time.time() + 3600)
    a, b, _c = conn.lease_many("emails", 3, "w", LEASE)
    conn.dead_letter_many("emails", [a], "test")
    conn.release_many("emails", [b])
    names = {str(name) for name in raw(redis_node, decode=True).keys("*")}
    assert names
    assert all(name.startswith("sergeant:{emails}:") for name in names)


def test_high_items_return_to_high_on_release_and_reclaim(conn: Connector) -> None:
    """Released and reclaimed HIGH items go back ahead of NORMAL ones."""
    conn.push_many("q", [b"n1", b"n2"])
    conn.push("q", b"h1", priority="HIGH")
    [high] = conn.lease_many("q", 1, "w", 0.05)
    assert high.payload == b"h1"
    assert conn.release_many("q", [high]) == 1
    [high] = conn.lease_many("q", 1, "w", 0.05)
    assert high.payload == b"h1"
    deadline = time.monotonic() + 10
    while conn.reclaim_expired("q", 0).requeued == 0:
        assert time.monotonic() < deadline, "the lease did not expire"
    assert conn.pop_many("q", 3) == [b"h1", b"n1", b"n2"]


# -- several nodes ------------------------------------------------------------------


def test_one_queue_spreads_over_every_node(conn2: Connector, redis_nodes: list[Node]) -> None:
    """Pushes of one queue land on both nodes; leases drain both and name each item's node."""
    assert conn2.ordered is False
    for start in range(0, 1_000, 100):
        conn2.push_many("spread", [f"{i}".encode() for i in range(start, start + 100)])
    held = [raw(node).llen(keys.queue_keys("spread").normal) for node in redis_nodes]
    assert held == [500, 500]
    leased = conn2.lease_many("spread", 2_000, "w", LEASE)
    assert sorted(int(d.payload) for d in leased) == list(range(1_000))
    assert {d.node for d in leased} == {0, 1}
    assert conn2.leased_count("spread") == 1_000
    assert conn2.ack_many("spread", leased) == 1_000
    assert conn2.leased_count("spread") == 0


def test_order_holds_per_node(conn2: Connector, redis_nodes: list[Node]) -> None:
    """On each node, HIGH comes before NORMAL and NORMAL is FIFO, whatever the other holds."""
    for node in redis_nodes:
        with Connector([node]) as single:
            single.push_many("q", [b"n1", b"n2", b"n3"])
            single.push("q", b"h1", priority="HIGH")
    leased = conn2.lease_many("q", 100, "w", LEASE)
    for index in (0, 1):
        assert [d.payload for d in leased if d.node == index] == [b"h1", b"n1", b"n2", b"n3"]


def test_items_on_a_single_node_are_drained(conn2: Connector, redis_nodes: list[Node]) -> None:
    """Items left on one node only (e.g. pushed before a node was added) are still served."""
    with Connector([redis_nodes[1]]) as other:
        other.push_many("q", [b"s1", b"s2"])
        other.push("q", b"late", consumable_from=time.time() + 3600)
    assert conn2.length("q") == 2
    assert conn2.length("q", include_delayed=True) == 3
    for _ in range(2):  # whichever node the rotation starts at
        [delivery] = conn2.lease_many("q", 1, "w", LEASE)
        assert delivery.node == 1
        assert conn2.ack_many("q", [delivery]) == 1
    assert conn2.pop_many("q", 10) == []
    assert conn2.purge("q") == 1


def test_connector_is_ordered_on_one_node(conn: Connector) -> None:
    """A single node keeps the strict order promise."""
    assert conn.ordered is True


def test_blocking_lease_wakes_for_a_due_delayed_item(conn: Connector) -> None:
    """An idle blocking lease returns a delayed item once it is due."""
    conn.push("q", b"soon", consumable_from=time.time() + 0.3)
    got = conn.lease_many("q", 10, "w", LEASE, block_seconds=30)
    assert [d.payload for d in got] == [b"soon"]


def test_stale_wake_tokens_are_cleared(conn: Connector, redis_node: Node) -> None:
    """Wake tokens of consumed pushes are dropped; a blocking lease then times out empty."""
    conn.push_many("q", [b"a", b"b"])
    assert raw(redis_node).llen(keys.queue_keys("q").wake) == 2
    assert len(conn.pop_many("q", 10)) == 2
    assert conn.lease_many("q", 10, "w", LEASE, block_seconds=0.2) == []
    assert raw(redis_node).exists(keys.queue_keys("q").wake) == 0


# -- processes ----------------------------------------------------------------------


def test_connector_built_before_fork_works_in_the_child(conn: Connector) -> None:
    """A forked child gets its own connections and can push; the parent still works."""
    conn.push("q", b"parent")
    pid = os.fork()
    if pid == 0:  # the child: exit code says whether the push worked
        code = 1
        try:
            conn.push("q", b"child")
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert sorted(conn.pop_many("q", 10)) == [b"child", b"parent"]


# -- keys and locks -----------------------------------------------------------------


def test_lock_and_key_layout(conn: Connector, redis_node: Node) -> None:
    """Keys and locks live under sergeant:key: and sergeant:lock: with a PX TTL."""
    conn.key_set("k", b"v", ttl_seconds=100)
    lock = conn.lock("l")
    assert lock.acquire(timeout=1, ttl=100)
    client = raw(redis_node)
    assert client.get("sergeant:key:k") == b"v"
    assert client.get("sergeant:lock:l") == (lock.token or "").encode()
    assert 0 < client.pttl("sergeant:key:k") <= 100_000
    assert lock.release()
