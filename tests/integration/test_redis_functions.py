"""The Redis connector's scripts as one Redis 7 function library
(``sergeant.connector.redis.functions``): loaded once, called with FCALL, loaded again
after a FUNCTION FLUSH, and EVALSHA where the ACL user may not use functions."""

from __future__ import annotations

import logging
import typing
from collections.abc import Iterator

import pytest
import redis

from sergeant.connector import base, create
from sergeant.connector.redis import Connector
from sergeant.connector.redis.nodes import LIBRARY
from tests.redis_servers import RedisClusterServers
from tests.servers import RedisServer

LEASE = 30.0
Node = dict[str, object]
PASSWORD = "fn-test-password"


@pytest.fixture
def raw(redis_node: Node) -> Iterator[redis.Redis]:
    """A plain client of the fixture server, its functions flushed and its stats reset."""
    client = redis.Redis(host=str(redis_node["host"]), port=int(str(redis_node["port"])))
    client.function_flush()
    client.config_resetstat()
    yield client
    client.close()


def calls(client: redis.Redis, command: str) -> int:
    stats = typing.cast(dict[str, dict[str, int]], client.info("commandstats"))
    return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))


def libraries(client: redis.Redis) -> list[str]:
    """The names of the libraries loaded on ``client``'s server (RESP2 replies)."""
    untyped: typing.Any = client
    return [str(fields[1].decode()) for fields in untyped.function_list()]


def cycle(conn: base.Connector, queue: str) -> None:
    """A full push, lease, ack cycle (and a pop, a pending pop, a length)."""
    conn.push_many(queue, [b"a", b"b", b"c"])
    conn.push(queue, b"later", consumable_from=1.0)  # an eta: the push script
    leased = conn.lease_many(queue, 2, "w", LEASE)
    assert len(leased) == 2
    assert conn.ack_many(queue, leased) == 2
    assert conn.start_pop(queue, 1)() == [b"c"]
    assert conn.pop_many(queue, 5) == [b"later"]
    assert conn.length(queue) == 0


def test_the_library_is_loaded_and_operations_go_through_fcall(
    redis_node: Node, raw: redis.Redis
) -> None:
    with Connector([redis_node]) as conn:
        cycle(conn, "fq")
    assert libraries(raw) == [LIBRARY.name]
    assert LIBRARY.name.startswith("sergeant_")
    assert len(LIBRARY.name) == len("sergeant_") + 12
    assert calls(raw, "fcall") >= 5
    assert calls(raw, "evalsha") == 0
    assert calls(raw, "eval") == 0


def test_a_second_client_finds_the_library_loaded(redis_node: Node, raw: redis.Redis) -> None:
    with Connector([redis_node]) as first, Connector([redis_node]) as second:
        first.push_many("fq", [b"a"])
        second.push_many("fq", [b"b"])
        assert len(second.lease_many("fq", 5, "w", LEASE)) == 2
    assert libraries(raw) == [LIBRARY.name]
    assert calls(raw, "evalsha") == 0


def test_after_function_flush_the_next_operation_reloads_it(
    redis_node: Node, raw: redis.Redis
) -> None:
    """Nothing is lost or run twice: the refused FCALL did not run."""
    with Connector([redis_node]) as conn:
        conn.push_many("fq", [b"1", b"2", b"3", b"4"])
        first = conn.lease_many("fq", 1, "w", LEASE)
        raw.function_flush()
        second = conn.lease_many("fq", 1, "w", LEASE)
        raw.function_flush()
        assert conn.ack_many("fq", first + second) == 2
        raw.function_flush()
        assert conn.start_pop("fq", 1)() == [b"3"]  # the pending path (on the lane)
        raw.function_flush()
        conn.push("fq", b"5", consumable_from=1.0)
        assert conn.pop_many("fq", 10) == [b"4", b"5"]
        assert [d.payload for d in first + second] == [b"1", b"2"]
        assert conn.length("fq") == 0
    assert libraries(raw) == [LIBRARY.name]
    assert calls(raw, "evalsha") == 0


@pytest.mark.parametrize(
    "rules",
    [
        ["+@all", "-function", "-fcall", "-fcall_ro"],  # may neither load nor call
        ["+@all", "-fcall", "-fcall_ro"],  # may load, not call
    ],
)
def test_an_acl_user_without_functions_falls_back_to_evalsha(
    redis_node: Node, raw: redis.Redis, caplog: pytest.LogCaptureFixture, rules: list[str]
) -> None:
    raw.acl_setuser("fnless", enabled=True, passwords=[f"+{PASSWORD}"], keys=["~*"])
    untyped: typing.Any = raw
    untyped.execute_command("ACL", "SETUSER", "fnless", "&*", *rules)
    try:
        node = {**redis_node, "username": "fnless", "password": PASSWORD}
        with caplog.at_level(logging.WARNING), Connector([node]) as conn:
            cycle(conn, "fq")
            cycle(conn, "fq2")
        lines = [r for r in caplog.records if "not as functions" in r.getMessage()]
        assert len(lines) == 1
        assert "ACL" in lines[0].getMessage() or "refused FCALL" in lines[0].getMessage()
        assert calls(raw, "evalsha") >= 5
    finally:
        raw.acl_deluser("fnless")


def test_a_server_that_refuses_the_load_runs_evalsha(caplog: pytest.LogCaptureFixture) -> None:
    """A FUNCTION LOAD refused for another reason (here: the command renamed away, as
    on a server without functions) also falls back, with one line."""
    server = RedisServer(["--save", "", "--appendonly", "no", "--rename-command", "FUNCTION", ""])
    server.start()
    try:
        with caplog.at_level(logging.WARNING), Connector([server.node]) as conn:
            cycle(conn, "fq")
        lines = [r for r in caplog.records if "not as functions" in r.getMessage()]
        assert len(lines) == 1
        assert "FUNCTION" in lines[0].getMessage()
    finally:
        server.close()


def test_on_the_cluster_every_primary_has_it_and_every_slot_range_works(
    redis_cluster_url: str, redis_cluster: RedisClusterServers
) -> None:
    clients: list[typing.Any] = [
        redis.Redis(host="127.0.0.1", port=s.port) for s in redis_cluster.servers
    ]
    try:
        for client in clients:
            client.function_flush()
            client.config_resetstat()
        # One queue per node: a name whose slot that node serves.
        queues: dict[int, str] = {}
        for n in range(1000):
            name = f"fq{n}"
            owner = clients[0].cluster("KEYSLOT", name)
            for index, client in enumerate(clients):
                ranges = [
                    (int(slot[0]), int(slot[1]))
                    for slot in client.execute_command("CLUSTER", "SLOTS")
                    if int(slot[2][1]) == client.connection_pool.connection_kwargs["port"]
                ]
                if index not in queues and any(lo <= owner <= hi for lo, hi in ranges):
                    queues[index] = name
            if len(queues) == len(clients):
                break
        assert len(queues) == len(clients)
        with create("redis", {"url": redis_cluster_url}) as conn:
            for queue in queues.values():
                conn.push_many(queue, [b"a", b"b", b"c"])
                leased = conn.lease_many(queue, 3, "w", LEASE)
                assert conn.ack_many(queue, leased) == 3
                assert conn.length(queue) == 0
            # A primary that lost it (as a new primary would) gets it again on use.
            clients[1].function_flush()
            queue = queues[1]
            conn.push_many(queue, [b"x"])
            assert conn.pop_many(queue, 5) == [b"x"]
        for client in clients:
            assert libraries(client) == [LIBRARY.name]
            assert calls(client, "fcall") >= 1
            assert calls(client, "evalsha") == 0
    finally:
        for client in clients:
            client.close()
