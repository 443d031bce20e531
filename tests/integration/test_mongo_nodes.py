"""Several MongoDB ``nodes`` as independent deployments, as in Sergeant 0.27: pushes
spread over them, workers drain them all, every settlement goes to the item's node.
The shared promises run over two nodes in tests/contract (``mongo-2-nodes``)."""

from __future__ import annotations

import time
import typing
from collections.abc import Iterator

import pymongo
import pytest

from sergeant import config
from sergeant.connector import create
from sergeant.connector.mongo import Connector
from sergeant.errors import BrokerUnavailable, ConfigError
from sergeant.objects import Task
from sergeant.worker import Worker
from tests.servers import MongoWireServer, free_port

LEASE = 30.0
QUEUE = "q"


def held_per_node(params: dict[str, typing.Any], collection: str = "tasks") -> list[int]:
    """How many documents of QUEUE each node's own database holds, read with plain pymongo."""
    counts = []
    for node in params["nodes"]:
        client: pymongo.MongoClient[dict[str, typing.Any]] = pymongo.MongoClient(
            host=node["host"], port=node["port"], serverSelectionTimeoutMS=3_000
        )
        try:
            counts.append(client[params["database"]][collection].count_documents({"queue": QUEUE}))
        finally:
            client.close()
    return counts


@pytest.fixture
def two(mongo_nodes_params: dict[str, typing.Any]) -> Iterator[Connector]:
    """A connector on the two fixture servers."""
    connector = Connector(**mongo_nodes_params)
    yield connector
    connector.close()


class Counter(Worker):
    """Records the ``i`` of every task it runs; stops once starved."""

    CONFIG: typing.ClassVar[config.WorkerConfig]

    def __init__(self) -> None:
        super().__init__()
        self.done: list[int] = []

    def generate_config(self) -> config.WorkerConfig:
        return self.CONFIG

    def work(self, task: Task) -> int:
        self.done.append(int(task.kwargs["i"]))
        return int(task.kwargs["i"]) * 2

    def on_starvation(self, time_with_no_tasks: int) -> None:
        self.stop()


def make_worker(params: dict[str, typing.Any], **overrides: typing.Any) -> Counter:
    """An initialised :class:`Counter` on the MongoDB set-up given by ``params``."""
    settings: dict[str, typing.Any] = {
        "name": QUEUE,
        "connector": config.Connector(type="mongo", params=params),
        "block_seconds": 0.05,
        "starvation": config.Starvation(time_with_no_tasks=1),
        **overrides,
    }
    worker_class = type("MongoNodesWorker", (Counter,), {"CONFIG": config.WorkerConfig(**settings)})
    worker: Counter = worker_class()
    worker.init_worker()
    return worker


# -- the 0.27 form ----------------------------------------------------------------------


def test_two_servers_as_two_nodes_receive_tasks_and_a_worker_serves_both(
    mongo_nodes_params: dict[str, typing.Any],
) -> None:
    """Tasks pushed through two 0.27 nodes land on both servers; one worker runs them all."""
    worker = make_worker(mongo_nodes_params, tasks_per_transaction=50)
    worker.push_tasks([{"i": i} for i in range(400)])  # one bulk push, cut in two
    for start in range(400, 600, 20):  # small batches, each whole on one node
        worker.push_tasks([{"i": i} for i in range(start, start + 20)])
    for i in range(600, 700):  # single pushes
        worker.push_task({"i": i})
    split = held_per_node(mongo_nodes_params)
    assert sum(split) == 700
    assert all(held >= 250 for held in split), split
    assert worker.number_of_enqueued_tasks() == 700
    summary = worker.work_loop()
    assert summary["executor_exception"] is None
    assert sorted(worker.done) == list(range(700))
    assert held_per_node(mongo_nodes_params) == [0, 0]
    worker.close()


def test_results_and_supervised_leases_work_across_nodes(
    mongo_nodes_params: dict[str, typing.Any],
) -> None:
    """Results stored by a worker on two nodes come back by id; its owner-level calls
    reach the leases it holds on both nodes."""
    worker = make_worker(mongo_nodes_params, result_ttl_seconds=60)
    ids = [worker.push_task({"i": i}) for i in range(20)]
    worker.work_loop()
    assert [worker.get_result(task_id, timeout=10) for task_id in ids] == [2 * i for i in range(20)]
    worker.close()
    with Connector(**mongo_nodes_params) as two:
        two.push_many(QUEUE, [f"{i}".encode() for i in range(400)])
        leased = two.lease_many(QUEUE, 400, "owner", LEASE)
        assert {d.node for d in leased} == {0, 1}
        assert two.extend_owned(QUEUE, "owner", LEASE) == 400
        assert two.release_owned(QUEUE, "owner") == 400
        assert two.leased_count(QUEUE) == 0
        assert two.length(QUEUE) == 400


def test_deliveries_remember_their_node_and_settle_there(
    two: Connector, mongo_nodes_params: dict[str, typing.Any]
) -> None:
    """Leases name each item's node; acks, releases and dead letters act on that node."""
    assert two.ordered is False
    two.push_many(QUEUE, [f"{i}".encode() for i in range(400)])
    leased = two.lease_many(QUEUE, 400, "w", LEASE)
    assert sorted(int(d.payload) for d in leased) == list(range(400))
    assert {d.node for d in leased} == {0, 1}
    assert two.leased_count(QUEUE) == 400
    on_0 = [d for d in leased if d.node == 0]
    on_1 = [d for d in leased if d.node == 1]
    # The same delivery claimed on the other node is stale there: nothing happens.
    assert two.ack_many(QUEUE, [on_0[0]._replace(node=1)]) == 0
    assert two.ack_many(QUEUE, on_0) == len(on_0)
    assert two.dead_letter_many(QUEUE, on_1[:3], "test", "boom") == 3
    assert two.release_many(QUEUE, on_1[3:]) == len(on_1) - 3
    assert two.leased_count(QUEUE) == 0
    assert [dead.node for dead in two.dead_letters(QUEUE)] == [1, 1, 1]
    assert two.length(QUEUE) == len(on_1) - 3
    assert held_per_node(mongo_nodes_params, "dead") == [0, 3]


def test_keys_and_locks_live_on_one_node_by_crc32(two: Connector) -> None:
    """A key is stored once, on the node CRC32 of its name picks; a lock is exclusive."""
    for index in range(20):
        two.key_set(f"k{index}", b"v")
    for index in range(20):
        assert two.key_get(f"k{index}") == b"v"
    first, second = two.lock("l"), two.lock("l")
    assert first.acquire(timeout=0)
    assert not second.acquire(timeout=0)
    assert second.is_locked()
    assert first.release()
    assert second.acquire(timeout=0)
    assert second.release()


def test_same_replica_set_name_on_each_node_is_accepted() -> None:
    """0.27 named one replica set per node, often the same name on every node: accepted."""
    params = {
        "nodes": [
            {"host": "a", "port": 1, "replica_set": "rs0"},
            {"host": "b", "port": 1, "replica_set": "rs0"},
            {"host": "c", "port": 1, "replica_set": "other"},
        ]
    }
    create("mongo", params).close()


def test_a_node_listed_twice_is_a_config_error() -> None:
    """The same host:port twice would count its items twice: refused, naming both entries."""
    with pytest.raises(ConfigError, match=r"nodes\[0\] and nodes\[1\] .*'a:27017'"):
        create("mongo", {"nodes": [{"host": "a"}, {"host": "a", "port": 27017}]})


# -- one deployment -------------------------------------------------------------------


def test_the_url_form_with_one_server_stays_one_deployment(
    mongo_server: MongoWireServer, mongo_params: dict[str, typing.Any]
) -> None:
    """``url`` names one deployment: strict order, every item from the one node."""
    url = mongo_params.get("url") or f"mongodb://127.0.0.1:{mongo_server.port}"
    with Connector(url=url, database=mongo_params["database"]) as one:
        assert one.ordered is True
        one.push_many(QUEUE, [b"n1", b"n2"])
        one.push(QUEUE, b"h1", priority="HIGH")
        leased = one.lease_many(QUEUE, 10, "w", LEASE)
        assert [d.payload for d in leased] == [b"h1", b"n1", b"n2"]
        assert {d.node for d in leased} == {0}


# -- a node down ----------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_a_node_down_is_broker_unavailable_naming_it(mongo_server: MongoWireServer) -> None:
    """With one of two nodes unreachable, calls that reach it fail naming that node only."""
    down = free_port()
    nodes = [mongo_server.node, {"host": "127.0.0.1", "port": down, "replica_set": None}]
    database = f"sergeant_test_down_{time.time_ns()}"
    with Connector(nodes=nodes, database=database) as connector:
        with pytest.raises(BrokerUnavailable, match=f"127.0.0.1:{down}") as caught:
            connector.ping()
        assert f":{mongo_server.port}" not in str(caught.value)
        with pytest.raises(BrokerUnavailable, match=f"127.0.0.1:{down}"):
            connector.length(QUEUE)
