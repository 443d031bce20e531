"""Shared fixtures: private brokers, and one ``connector`` fixture over every set-up."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from sergeant.connector import Connector
from tests.filesystems import SmallFilesystem
from tests.redis_servers import RedisClusterServers
from tests.servers import MongoWireServer, RedisServer

#: Broker set-ups every contract test runs against.
CONNECTOR_KINDS = [
    "memory",
    "local",
    "redis",
    "redis-2-nodes",
    "redis-cluster",
    "redis-cluster-sharded",
    "mongo",
    "mongo-2-nodes",
]


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A private redis-server for the session, flushed by ``redis_node`` per test."""
    server = RedisServer()
    server.start()
    yield server
    server.close()


@pytest.fixture(scope="session")
def redis_server_b() -> Iterator[RedisServer]:
    """A second, independent redis-server, for the multi-node set-up."""
    server = RedisServer()
    server.start()
    yield server
    server.close()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisClusterServers]:
    """A private three-node Redis Cluster for the session, flushed per test."""
    cluster = RedisClusterServers()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
def redis_cluster_url(redis_cluster: RedisClusterServers) -> str:
    """The ``redis+cluster://`` URL of the session cluster, emptied for this test."""
    redis_cluster.flush()
    return redis_cluster.url


@pytest.fixture(scope="session")
def mongo_server() -> Iterator[MongoWireServer]:
    """A private nx-27017 MongoDB wire-protocol server for the session."""
    server = MongoWireServer()
    server.start()
    yield server
    server.close()


@pytest.fixture(scope="session")
def mongo_server_b() -> Iterator[MongoWireServer]:
    """A second, independent nx-27017 server, for the several-nodes set-up."""
    server = MongoWireServer()
    server.start()
    yield server
    server.close()


@pytest.fixture
def full_redis() -> Iterator[RedisServer]:
    """A private redis-server of this test's own with 5 MB of ``maxmemory`` and no
    eviction, to fill."""
    limits = ["--maxmemory", "5mb", "--maxmemory-policy", "noeviction"]
    server = RedisServer(["--save", "", "--appendonly", "no", *limits])
    server.start()
    yield server
    server.close()


@pytest.fixture
def small_filesystem() -> Iterator[SmallFilesystem]:
    """A 32 MiB tmpfs of this test's own, to fill; skipped where it cannot be mounted."""
    filesystem = SmallFilesystem(32 << 20)
    why = filesystem.mount()
    if why is not None:
        filesystem.close()
        pytest.skip(f"a small file system to fill cannot be mounted here ({why}); needs root")
    yield filesystem
    filesystem.close()


@pytest.fixture
def redis_node(redis_server: RedisServer) -> dict[str, object]:
    """The 0.27 ``nodes`` entry of the private redis-server, emptied for this test."""
    redis_server.flush()
    return redis_server.node


@pytest.fixture
def redis_nodes(redis_server: RedisServer, redis_server_b: RedisServer) -> list[dict[str, object]]:
    """Two independent redis-servers, both emptied for this test."""
    redis_server.flush()
    redis_server_b.flush()
    return [redis_server.node, redis_server_b.node]


@pytest.fixture
def mongo_params(request: pytest.FixtureRequest) -> dict[str, object]:
    """Connector params for MongoDB: a real server when SERGEANT_TEST_MONGO_URI is set,
    else the session's nx-27017; a database of its own for this test."""
    database = f"sergeant_test_{uuid.uuid4().hex[:12]}"
    uri = os.environ.get("SERGEANT_TEST_MONGO_URI")
    if uri:
        return {"url": uri, "database": database}
    server: MongoWireServer = request.getfixturevalue("mongo_server")
    return {"nodes": [server.node], "database": database}


@pytest.fixture
def mongo_nodes_params(
    mongo_server: MongoWireServer, mongo_server_b: MongoWireServer
) -> dict[str, object]:
    """Connector params naming two independent nx-27017 servers as two 0.27 ``nodes``,
    on a database of its own for this test."""
    database = f"sergeant_test_{uuid.uuid4().hex[:12]}"
    return {"nodes": [mongo_server.node, mongo_server_b.node], "database": database}


@pytest.fixture
def memory_name() -> Iterator[str]:
    """The name of an in-process broker of this test's own, forgotten afterwards."""
    from sergeant.connector import memory

    name = f"test-{uuid.uuid4().hex[:12]}"
    yield name
    memory.forget(name)


def connector_params(
    request: pytest.FixtureRequest, kind: str, tmp_path: Path
) -> tuple[str, dict[str, object]]:
    """The ``(type, params)`` of ``sergeant.config.Connector`` for one broker set-up."""
    if kind == "memory":
        return "memory", {"name": request.getfixturevalue("memory_name")}
    if kind == "local":
        return "local", {"file_path": str(tmp_path / "broker.sqlite3")}
    if kind == "redis":
        return "redis", {"nodes": [request.getfixturevalue("redis_node")]}
    if kind == "redis-2-nodes":
        return "redis", {"nodes": request.getfixturevalue("redis_nodes")}
    if kind == "redis-cluster":
        return "redis", {"url": request.getfixturevalue("redis_cluster_url")}
    if kind == "redis-cluster-sharded":
        return "redis", {"url": request.getfixturevalue("redis_cluster_url"), "shards": 3}
    if kind == "mongo":
        return "mongo", request.getfixturevalue("mongo_params")
    if kind == "mongo-2-nodes":
        return "mongo", request.getfixturevalue("mongo_nodes_params")
    raise ValueError(f"unknown connector kind {kind!r}")


@pytest.fixture(params=CONNECTOR_KINDS)
def connector_config(
    request: pytest.FixtureRequest, tmp_path: Path
) -> tuple[str, dict[str, object]]:
    """``(type, params)`` for each broker set-up in turn."""
    kind: str = request.param
    return connector_params(request, kind, tmp_path)


@pytest.fixture
def connector(connector_config: tuple[str, dict[str, object]]) -> Iterator[Connector]:
    """A fresh, empty connector for each broker set-up in turn."""
    from sergeant.connector import create

    kind, params = connector_config
    conn = create(kind, params)
    yield conn
    conn.close()


@pytest.fixture
def queue() -> str:
    """A queue name of its own for this test."""
    return f"q-{uuid.uuid4().hex[:10]}"
