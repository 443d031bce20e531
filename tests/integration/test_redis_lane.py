"""The Redis connector's dedicated hot-path connection (``sergeant.connector.redis.lane``):
replies never cross from one command to the next, and callers that find it busy
still get through (on the pool)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import redis

from sergeant.connector.redis import Connector
from sergeant.connector.redis.lane import Lane, command

Node = dict[str, object]


@pytest.fixture
def conn(redis_node: Node) -> Iterator[Connector]:
    connector = Connector([redis_node])
    yield connector
    connector.close()


def test_a_reply_cut_off_by_a_timeout_is_never_read_as_the_next_ones(redis_node: Node) -> None:
    client = redis.Redis(host=str(redis_node["host"]), port=int(str(redis_node["port"])))
    # The pool's socket timeout (0.2 s) cuts the wait for BLPOP's reply (due in 2 s).
    impatient = redis.Redis(
        host=str(redis_node["host"]), port=int(str(redis_node["port"])), socket_timeout=0.2
    )
    lane = Lane(impatient.connection_pool)
    try:
        with pytest.raises(redis.exceptions.TimeoutError):
            lane.try_send(command("BLPOP", "lane-test-never-pushed", 2))
        client.rpush("lane-test-list", b"x")
        # Had the connection been kept, this would read BLPOP's late nil.
        assert lane.try_send(command("LLEN", "lane-test-list")) == [1]
    finally:
        lane.close()
        client.delete("lane-test-list")


def test_every_reply_of_one_write_is_read_in_order(redis_node: Node) -> None:
    impatient = redis.Redis(host=str(redis_node["host"]), port=int(str(redis_node["port"])))
    lane = Lane(impatient.connection_pool)
    try:
        packed = command("DEL", "lane-test-n") + command("INCR", "lane-test-n")
        packed += command("INCRBY", "lane-test-n", 5)
        assert lane.try_send(packed, 3) == [0, 1, 6]
        assert lane.try_send(command("GET", "lane-test-n")) == [b"6"]
    finally:
        lane.close()


def test_an_error_reply_leaves_the_next_command_its_own_reply(conn: Connector, queue: str) -> None:
    node = conn._all()[0]
    assert node.lane is not None
    node.client.set("lane-test-string", "not a list")
    with pytest.raises(redis.exceptions.ResponseError):
        node.lane.try_send(
            command("LPUSH", "lane-test-string", "x") + command("GET", "lane-test-string"), 2
        )
    assert node.lane.try_send(command("PING")) == [b"PONG"]
    node.client.delete("lane-test-string")


def test_pushes_from_many_threads_all_land_once(conn: Connector, queue: str) -> None:
    def push(thread: int) -> None:
        for i in range(200):
            conn.push_many(queue, [b"%d-%d" % (thread, i)])

    threads = [threading.Thread(target=push, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    popped = conn.pop_many(queue, 10_000)
    assert sorted(popped) == sorted(b"%d-%d" % (t, i) for t in range(8) for i in range(200))


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        ("NOSCRIPT No matching script", redis.exceptions.NoScriptError),
        ("LOADING Redis is loading the dataset in memory", redis.exceptions.BusyLoadingError),
        ("ERR something else", redis.exceptions.ResponseError),
    ],
)
def test_error_replies_raise_what_redis_py_raises(
    redis_node: Node, reply: str, error: type[Exception]
) -> None:
    """The lane reads replies itself: a Redis restarting (LOADING) must still raise, as a
    connection error the node retries, and a missing script the error its caller reloads on."""
    client = redis.Redis(host=str(redis_node["host"]), port=int(str(redis_node["port"])))
    lane = Lane(client.connection_pool)
    script = f"return redis.error_reply('{reply}')"
    try:
        assert lane.try_send(command("PING")) == [b"PONG"]
        with pytest.raises(error, match=reply.split(" ", 1)[1]):
            lane.try_send(command("EVAL", script, 0))
        assert lane.try_send(command("ECHO", "next")) == [b"next"]
    finally:
        lane.close()


def test_requests_started_together_go_out_in_one_write(redis_node: Node) -> None:
    """Inside ``corked()`` the started requests wait and go out in one write at its
    end (the server reads them in one read); their replies come in order."""
    client = redis.Redis(host=str(redis_node["host"]), port=int(str(redis_node["port"])))
    lane = Lane(client.connection_pool)

    def reads() -> int:
        return int(client.info("stats")["total_reads_processed"])

    try:
        lane.try_send(command("DEL", "lane-test-n"))  # connected: no handshake below
        before = reads()
        with lane.corked():
            pending = [lane.start(command("INCR", "lane-test-n")) for _ in range(3)]
        assert [p.result() for p in pending] == [1, 2, 3]
        assert reads() - before == 2  # the lane's one read, and INFO's own
        # A reply read inside the block writes the held requests first.
        with lane.corked():
            first = lane.start(command("INCR", "lane-test-n"))
            assert first.result() == 4
            second = lane.start(command("INCR", "lane-test-n"))
        assert second.result() == 5
    finally:
        lane.close()
        client.delete("lane-test-n")
        client.close()


def _queued_in_multi(client: redis.Redis, name: str) -> int:
    """How many commands the connection named ``name`` has queued in its MULTI."""
    for entry in client.client_list():
        if entry.get("name") == name:
            return int(entry["multi"])
    raise AssertionError(f"no connection named {name}")


def test_parts_reach_the_server_as_each_is_made(redis_node: Node) -> None:
    """``try_send_parts`` writes a part before the next is made, so the server parses
    the first commands of a big push while the rest is packed; a transaction's
    commands still run only at its EXEC."""
    client = redis.Redis(host=str(redis_node["host"]), port=int(str(redis_node["port"])))
    lane = Lane(client.connection_pool)
    seen: list[int] = []

    def parts() -> Iterator[bytes]:
        yield command("MULTI") + command("RPUSH", "lane-test-parts", "a")
        deadline = time.monotonic() + 10
        while _queued_in_multi(client, "lane-test") < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        seen.append(_queued_in_multi(client, "lane-test"))
        seen.append(client.llen("lane-test-parts"))  # queued, not run
        yield command("RPUSH", "lane-test-parts", "b") + command("EXEC")

    try:
        lane.try_send(command("CLIENT", "SETNAME", "lane-test"))
        replies = lane.try_send_parts(parts(), 4)
        assert replies == [b"OK", b"QUEUED", b"QUEUED", [1, 2]]
        assert seen == [1, 0]
        assert client.lrange("lane-test-parts", 0, -1) == [b"a", b"b"]
    finally:
        lane.close()
        client.delete("lane-test-parts")
        client.close()


def test_a_transaction_whose_parts_fail_midway_never_runs(redis_node: Node) -> None:
    """A part that cannot be made drops the connection: the half-written MULTI is
    discarded by the server, and the lane works again on a new connection."""
    client = redis.Redis(host=str(redis_node["host"]), port=int(str(redis_node["port"])))
    lane = Lane(client.connection_pool)

    def parts() -> Iterator[bytes]:
        yield command("MULTI") + command("RPUSH", "lane-test-parts", "a")
        raise ValueError("could not pack the next part")

    try:
        with pytest.raises(ValueError, match="next part"):
            lane.try_send_parts(parts(), 3)
        # A new connection: the MULTI begun on the old one is gone, and ran nothing.
        with pytest.raises(redis.exceptions.ResponseError, match="EXEC without MULTI"):
            lane.try_send(command("EXEC"))
        assert client.llen("lane-test-parts") == 0
        assert lane.try_send(command("PING")) == [b"PONG"]
    finally:
        lane.close()
        client.delete("lane-test-parts")
        client.close()
