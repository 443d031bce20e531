"""Scaling Redis out: URL and TLS settings, one queue spread over independent nodes, a TLS
server with client certificates, an ACL user, and a Redis Cluster's one-slot layout."""

from __future__ import annotations

import typing
from collections.abc import Iterator

import pytest
import redis
from click.testing import CliRunner

from sergeant import config
from sergeant.cli import main
from sergeant.connector import create
from sergeant.connector.redis import keys
from sergeant.connector.redis.settings import NodeConfig, parse_params
from sergeant.errors import BrokerUnavailable, ConfigError
from sergeant.objects import Task
from sergeant.worker import Worker
from tests.redis_servers import ACL_USER, RedisClusterServers, SecureRedisServer

Node = dict[str, object]


class Counter(Worker):
    """Records the ``i`` of every task it runs; stops once starved."""

    CONFIG: typing.ClassVar[config.WorkerConfig]

    def __init__(self) -> None:
        super().__init__()
        self.done: list[int] = []

    def generate_config(self) -> config.WorkerConfig:
        return self.CONFIG

    def work(self, task: Task) -> None:
        self.done.append(int(task.kwargs["i"]))

    def on_starvation(self, time_with_no_tasks: int) -> None:
        self.stop()


def make_worker(params: dict[str, object], **overrides: typing.Any) -> Counter:
    """An initialised :class:`Counter` on the Redis set-up given by ``params``."""
    settings: dict[str, typing.Any] = {
        "name": "scale",
        "connector": config.Connector(type="redis", params=params),
        "block_seconds": 0.05,
        "starvation": config.Starvation(time_with_no_tasks=1),
        **overrides,
    }
    worker_class = type("ScaleWorker", (Counter,), {"CONFIG": config.WorkerConfig(**settings)})
    worker: Counter = worker_class()
    worker.init_worker()
    return worker


@pytest.fixture(scope="module")
def secure() -> Iterator[SecureRedisServer]:
    """A redis-server with a TLS port (throwaway CA, client certificates) and an ACL user."""
    server = SecureRedisServer()
    try:
        server.start()
        yield server
    finally:
        server.close()


# -- settings ---------------------------------------------------------------------


def test_url_forms_become_node_settings() -> None:
    """redis://, rediss:// with TLS query options, redis+cluster:// and 'urls' all parse."""
    [one] = parse_params(url="redis://me:p%40ss@db.example:6380/2").nodes
    assert one == NodeConfig("db.example", 6380, "p@ss", 2, "me")
    [tls] = parse_params(url="rediss://h/0?ssl_ca_certs=/ca.pem", tls={"ssl_keyfile": "/k"}).nodes
    assert (tls.ssl, tls.port, tls.ssl_ca_certs, tls.ssl_keyfile) == (True, 6379, "/ca.pem", "/k")
    cluster = parse_params(url="redis+cluster://a:7000,b:7001,[::1]:7002")
    assert cluster.cluster
    assert [n.address for n in cluster.nodes] == ["a:7000", "b:7001", "::1:7002"]
    independent = parse_params(urls=["redis://a:1/0", "rediss://b:2/0"])
    assert not independent.cluster
    assert [n.ssl for n in independent.nodes] == [False, True]
    seeds = parse_params(nodes=[{"host": "a", "port": 1}], cluster=True, tls={"ssl": True})
    assert seeds.cluster
    assert seeds.nodes[0].ssl


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "exactly one"),
        ({"url": "redis://a:1/0", "urls": ["redis://b:1/0"]}, "exactly one"),
        ({"url": "http://a:1/0"}, r"url is 'http://a:1/0'.*redis\+cluster://"),
        ({"url": "redis://a:1/x"}, r"url .*database 'x'"),
        ({"url": "redis://a:1,b:2/0"}, r"url .*redis\+cluster://"),
        ({"url": "redis+cluster://a:1/3"}, "only database 0"),
        ({"url": "redis://a:port/0"}, "not host:port"),
        ({"url": "redis://a:1/0?ssl_ca_certs=/ca"}, "TLS options need TLS"),
        ({"url": "rediss://a:1/0?timeout=3"}, "'timeout' is unknown"),
        ({"urls": "redis://a:1/0"}, "urls is 'redis://a:1/0'"),
        ({"urls": ["redis+cluster://a:1"]}, r"urls\[0\] .*as 'url'"),
        ({"nodes": [{"host": "a", "port": 1}], "cluster": "yes"}, "cluster is 'yes'"),
        ({"nodes": [{"host": "a", "port": 1}], "ssl_ca_certs": "/ca"}, "'ssl': True"),
        ({"url": "redis://a:1/0", "cluster": True}, "applies to 'nodes' only"),
        ({"url": "redis://a:1/0", "sentinel": True}, "sentinel"),
    ],
)
def test_bad_params_are_config_errors_naming_the_key(params: Node, message: str) -> None:
    """Every malformed form is a ConfigError naming the key and value, before any I/O."""
    with pytest.raises(ConfigError, match=message):
        create("redis", params)


def test_from_url_accepts_tls_and_cluster_urls() -> None:
    """Connector.from_url hands rediss:// and redis+cluster:// URLs to the Redis connector."""
    for url in ("rediss://h:6380/0?ssl_ca_certs=/ca", "redis+cluster://a:1,b:2"):
        assert config.Connector.from_url(url) == config.Connector(type="redis", params={"url": url})


# -- independent nodes --------------------------------------------------------------


def test_ten_thousand_tasks_spread_evenly_and_all_run(redis_nodes: list[Node]) -> None:
    """10,000 tasks of one queue land within 10% of even on two nodes; workers drain both."""
    worker = make_worker({"nodes": redis_nodes}, tasks_per_transaction=500)
    worker.push_tasks([{"i": i} for i in range(5_000)])  # one bulk push
    for start in range(5_000, 6_850, 37):  # small batches, each whole on one node
        worker.push_tasks([{"i": i} for i in range(start, start + 37)])
    for i in range(6_850, 10_000):  # single pushes
        worker.push_task({"i": i})
    normal = keys.queue_keys("scale").normal
    clients = [redis.Redis(host="127.0.0.1", port=int(str(n["port"]))) for n in redis_nodes]
    split = [int(client.llen(normal)) for client in clients]
    print(f"split over two nodes: {split}")
    assert sum(split) == 10_000
    assert all(abs(held - 5_000) <= 500 for held in split), split
    summary = worker.work_loop()
    assert summary["executor_exception"] is None
    assert sorted(worker.done) == list(range(10_000))
    for client in clients:
        scale = keys.queue_keys("scale")
        # every batch acknowledged; only the mirror of the lease counter stays
        assert client.hkeys(scale.leases) in ([], [b"#seq"])
        assert int(client.get(scale.leased_count) or 0) == 0
        assert client.llen(normal) == 0
        client.close()
    assert worker.broker.connector.leased_count("scale") == 0
    worker.close()


# -- TLS and ACL ------------------------------------------------------------------------


def test_tls_with_client_certificate_runs_tasks(secure: SecureRedisServer) -> None:
    """rediss:// with the fixture's CA and client certificate: push and a worker loop work."""
    secure.flush()
    worker = make_worker({"url": secure.tls_url})
    worker.push_tasks([{"i": i} for i in range(20)])
    worker.work_loop()
    assert sorted(worker.done) == list(range(20))
    worker.close()


def test_tls_options_as_params_keys(secure: SecureRedisServer) -> None:
    """The TLS options also work as params keys next to a plain rediss:// URL."""
    params: dict[str, object] = {
        "url": f"rediss://127.0.0.1:{secure.tls_port}/0",
        "ssl_ca_certs": secure.cert("ca.crt"),
        "ssl_certfile": secure.cert("client.crt"),
        "ssl_keyfile": secure.cert("client.key"),
    }
    with create("redis", params) as connector:
        connector.ping()


def test_acl_user_runs_tasks(secure: SecureRedisServer) -> None:
    """A redis:// URL with an ACL user and password: push and a worker loop work."""
    secure.flush()
    worker = make_worker({"url": secure.acl_url()})
    worker.push_tasks([{"i": i} for i in range(20)])
    worker.work_loop()
    assert sorted(worker.done) == list(range(20))
    worker.close()


def test_wrong_password_is_one_clear_error(secure: SecureRedisServer) -> None:
    """A wrong password: BrokerUnavailable naming the user and host; the CLI prints no trace."""
    url = secure.acl_url(password="wrong")
    connector = create("redis", {"url": url})
    with pytest.raises(BrokerUnavailable, match=rf"127\.0\.0\.1:{secure.port}.*'{ACL_USER}'"):
        connector.ping()
    result = CliRunner().invoke(main, ["stats", "-b", url, "q"])
    assert result.exit_code != 0
    assert ACL_USER in result.output
    assert "Traceback" not in result.output


# -- cluster ----------------------------------------------------------------------------


def test_every_key_of_a_queue_is_in_one_slot(
    redis_cluster_url: str, redis_cluster: RedisClusterServers
) -> None:
    """On the cluster, one node holds all of a queue's keys, all in the queue's slot."""
    with create("redis", {"url": redis_cluster_url}) as connector:
        connector.push_many("emails", [b"a", b"b", b"c"])
        a, b, _c = connector.lease_many("emails", 3, "w", 30)
        connector.dead_letter_many("emails", [a], "test")
        connector.release_many("emails", [b])
        holders = []
        for server in redis_cluster.servers:
            client = redis.Redis(host="127.0.0.1", port=server.port, decode_responses=True)
            names = [str(name) for name in client.keys("sergeant:{emails}:*")]
            if names:
                holders.append(server.port)
                assert {client.cluster("KEYSLOT", name) for name in names} == {
                    client.cluster("KEYSLOT", "emails")
                }
            client.close()
        assert len(holders) == 1
