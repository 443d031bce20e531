"""Plumbing of the MongoDB connector: settings, the per-process client, error wrapping,
and the shared pieces of the document layout described in ``sergeant.connector.mongo``.
"""

from __future__ import annotations

import functools
import os
import re
import threading
import typing
from collections.abc import Callable, Sequence

import pymongo
import pymongo.errors
import pymongo.uri_parser
from bson import ObjectId
from bson.errors import InvalidId
from pymongo.collection import Collection
from pymongo.database import Database

from sergeant.connector.base import Delivery
from sergeant.errors import BrokerUnavailable, ConfigError, ConnectionLost, ConnectorError

__all__ = [
    "DEAD_ORDER",
    "LEASED",
    "MOVING",
    "ORDER",
    "PRIORITIES",
    "READY",
    "Document",
    "MongoClientHandle",
    "allocate",
    "claim_of",
    "client_handles",
    "count",
    "group_by_token",
    "held_query",
    "insert_new",
    "new_item",
    "translate_error",
    "where",
    "wrap_errors",
]

Document = dict[str, typing.Any]
P = typing.ParamSpec("P")
R = typing.TypeVar("R")

#: Milliseconds pymongo waits for a reachable server before failing an operation.
SERVER_SELECTION_TIMEOUT_MS = 3_000
#: Milliseconds to open a TCP connection.
CONNECT_TIMEOUT_MS = 3_000
#: Milliseconds one operation may wait on a socket (guards against a hung server).
SOCKET_TIMEOUT_MS = 60_000
#: The keys a 0.27 ``nodes`` entry may have.
NODE_KEYS = ("host", "port", "replica_set")
DEFAULT_PORT = 27017
DUPLICATE_KEY = 11000

#: ``tasks.state``: ready (or delayed until ``eta``), leased, or being moved to ``dead``.
READY, LEASED, MOVING = "r", "l", "m"
PRIORITIES: dict[str, int] = {"HIGH": 0, "NORMAL": 1}
ORDER = [("priority", pymongo.ASCENDING), ("seq", pymongo.ASCENDING)]
DEAD_ORDER = [("dead_at", pymongo.ASCENDING), ("seq", pymongo.ASCENDING)]


class _Addressed(typing.Protocol):
    address: str


S = typing.TypeVar("S", bound=_Addressed)


def translate_error(exc: pymongo.errors.PyMongoError, address: str) -> ConnectorError:
    """The ``sergeant.errors`` exception for a pymongo one, naming the server."""
    if isinstance(exc, pymongo.errors.ServerSelectionTimeoutError):
        seconds = SERVER_SELECTION_TIMEOUT_MS / 1000
        return BrokerUnavailable(
            f"MongoDB at {address!r} did not answer within {seconds:g} s; "
            "check that the server is running and that Connector.params names it"
        )
    if isinstance(exc, pymongo.errors.ConnectionFailure):
        return ConnectionLost(f"the connection to MongoDB at {address!r} broke: {exc}")
    return ConnectorError(f"MongoDB at {address!r} failed: {exc}")


def wrap_errors(
    method: Callable[typing.Concatenate[S, P], R],
) -> Callable[typing.Concatenate[S, P], R]:
    """Re-raise pymongo errors of a method as ``sergeant.errors.ConnectorError`` subclasses."""

    @functools.wraps(method)
    def wrapper(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(self, *args, **kwargs)
        except pymongo.errors.PyMongoError as exc:
            raise translate_error(exc, self.address) from exc

    return wrapper


def where(**conditions: typing.Any) -> Document:
    """A filter with scalar equalities spelled ``{'$eq': value}``; same meaning in MongoDB.

    nx-27017 serves ``$eq`` from an index, while a bare value also looks inside
    arrays there, which costs a full scan.
    """
    return {
        field: value if isinstance(value, dict) else {"$eq": value}
        for field, value in conditions.items()
    }


def count(collection: Collection[Document], query: Document) -> int:
    """Documents matching ``query``, counted with ``$count`` (much faster on nx-27017
    than ``count_documents``, whose ``$group`` it runs slowly)."""
    for result in collection.aggregate([{"$match": query}, {"$count": "n"}]):
        return int(result["n"])
    return 0


def new_item(queue: str, priority: int, seq: int, eta: float, payload: bytes) -> Document:
    """A ``tasks`` document for a new ready (or delayed) item, never delivered."""
    item = {"queue": queue, "state": READY, "priority": priority, "seq": seq, "eta": eta}
    return {**item, "payload": payload, "deliveries": 0, "claim": ""}


def allocate(database: Database[Document], counter: str, count: int) -> int:
    """Reserve ``count`` consecutive seqs at the ``'tail'`` or ``'head'``; return the first.

    Tail seqs grow from 1, head seqs shrink from -1, so both are unique for good.
    """
    step = count if counter == "tail" else -count
    document = database.counters.find_one_and_update(
        {"_id": counter},
        {"$inc": {"value": step}},
        upsert=True,
        return_document=pymongo.ReturnDocument.AFTER,
    )
    value = int(typing.cast(Document, document)["value"])
    return value - count + 1 if counter == "tail" else value


def claim_of(token: int) -> str:
    """The ``claim`` field value of the lease whose fencing token is ``token``."""
    return f"{token:032x}"


def held_query(queue: str, ids: list[ObjectId], token: int) -> Document:
    """The filter matching the items ``ids`` of ``queue`` still leased under ``token``."""
    return where(_id={"$in": ids}, queue=queue, state=LEASED, claim=claim_of(token))


def group_by_token(deliveries: Sequence[Delivery]) -> dict[int, list[ObjectId]]:
    """The item ids of ``deliveries`` by token, without ids this connector never made."""
    groups: dict[int, list[ObjectId]] = {}
    for delivery in deliveries:
        try:
            groups.setdefault(delivery.token, []).append(ObjectId(delivery.item_id))
        except (InvalidId, TypeError):
            continue
    return groups


def insert_new(collection: Collection[Document], documents: list[Document]) -> set[int]:
    """Insert documents, skipping those whose ``_id`` is taken; return the skipped indexes."""
    try:
        collection.insert_many(documents, ordered=False)
    except pymongo.errors.BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if any(error.get("code") != DUPLICATE_KEY for error in errors):
            raise
        return {int(error["index"]) for error in errors}
    return set()


def _parse_node(index: int, node: typing.Any) -> tuple[str, str | None]:
    """The ``host:port`` and the replica set name of 0.27 ``nodes[index]``."""
    if not isinstance(node, dict):
        raise ConfigError(
            f"Connector.params.nodes[{index}] is {node!r}; use a dict with 'host', 'port'"
        )
    for key in node:
        if key not in NODE_KEYS:
            accepted = ", ".join(repr(name) for name in NODE_KEYS)
            raise ConfigError(
                f"Connector.params.nodes[{index}] has unknown key {key!r}; use {accepted}"
            )
    if "host" not in node:
        raise ConfigError(f"Connector.params.nodes[{index}] has no 'host'; add one")
    port = node.get("port", DEFAULT_PORT)
    if not isinstance(port, int) or isinstance(port, bool):
        raise ConfigError(f"Connector.params.nodes[{index}].port is {port!r}; use an int")
    return f"{node['host']}:{port}", node.get("replica_set") or None


def _parse_nodes(nodes: typing.Any) -> list[tuple[str, str | None]]:
    """``(host:port, replica set)`` of each 0.27 ``nodes`` entry: one deployment each."""
    if not isinstance(nodes, list) or not nodes:
        raise ConfigError(f"Connector.params.nodes is {nodes!r}; give a list of at least one node")
    parsed = [_parse_node(index, node) for index, node in enumerate(nodes)]
    seen: dict[str, int] = {}
    for index, (address, _) in enumerate(parsed):
        if address in seen:
            # Two clients of one deployment would count every item there twice.
            raise ConfigError(
                f"Connector.params.nodes[{seen[address]}] and nodes[{index}] both name "
                f"{address!r}; list each deployment once"
            )
        seen[address] = index
    return parsed


def _check_url(url: str) -> str:
    """Validate a URI; return it with any password masked, for messages."""
    masked = re.sub(r"(://[^:@/]*):[^@/]*@", r"\1:***@", url)
    if url.startswith("mongodb://"):
        try:
            pymongo.uri_parser.parse_uri(url)
        except (pymongo.errors.PyMongoError, ValueError) as exc:
            raise ConfigError(f"Connector.params.url {masked!r} is invalid: {exc}") from exc
    # mongodb+srv:// would need a DNS lookup to check, so pymongo checks it on first use.
    elif not url.startswith("mongodb+srv://"):
        raise ConfigError(
            f"Connector.params.url is {masked!r}; use a mongodb:// or mongodb+srv:// URI"
        )
    return masked


def client_handles(
    nodes: list[dict[str, typing.Any]] | None, url: str | None, database: str
) -> list[MongoClientHandle]:
    """One handle per deployment: each 0.27 ``nodes`` entry, or the one ``url`` names.

    Raises:
        ConfigError: not exactly one of ``nodes`` and ``url``, or a bad node or URI.
    """
    if (nodes is None) == (url is None):
        raise ConfigError(
            "Connector.params for 'mongo' need exactly one of 'nodes' and 'url'; "
            f"got nodes={nodes!r}, url={'<set>' if url else url!r}"
        )
    if url is not None:
        return [MongoClientHandle(url, _check_url(url), database)]
    return [
        MongoClientHandle(address, address, database, replica_set)
        for address, replica_set in _parse_nodes(nodes)
    ]


class MongoClientHandle:
    """A lazily opened ``MongoClient`` of one deployment per process, indexes made.

    Args:
        host: a ``host:port`` or a ``mongodb://`` URI, as pymongo takes it.
        address: what messages name: the ``host:port``, or the URI with its password
            masked.
        database: the database name.
        replica_set: the replica set to connect to through ``host``, if any.
    """

    def __init__(
        self, host: str, address: str, database: str, replica_set: str | None = None
    ) -> None:
        self.address = address
        self.client_args: dict[str, typing.Any] = {
            "host": host,
            "retryWrites": True,
            "serverSelectionTimeoutMS": SERVER_SELECTION_TIMEOUT_MS,
            "connectTimeoutMS": CONNECT_TIMEOUT_MS,
            "socketTimeoutMS": SOCKET_TIMEOUT_MS,
        }
        if replica_set is not None:
            self.client_args["replicaset"] = replica_set
        self.database_name = database
        self._mutex = threading.Lock()
        self._client: pymongo.MongoClient[Document] | None = None
        self._database: Database[Document] | None = None
        self._pid = os.getpid()

    def database(self) -> Database[Document]:
        """The database, opening a client (and making indexes) on first use in this process."""
        pid = os.getpid()
        if self._pid != pid:
            # Forked: the inherited client, and perhaps a held mutex, are unusable here.
            self._mutex = threading.Lock()
            self._client, self._database, self._pid = None, None, pid
        database = self._database
        if database is not None:
            return database
        with self._mutex:
            if self._database is None:
                client: pymongo.MongoClient[Document] = pymongo.MongoClient(**self.client_args)
                try:
                    _create_indexes(client[self.database_name])
                except BaseException:
                    client.close()
                    raise
                self._client, self._database = client, client[self.database_name]
            return self._database

    def close(self) -> None:
        """Close this process's client, if one was opened."""
        client, self._client, self._database = self._client, None, None
        if client is not None and self._pid == os.getpid():
            client.close()


def _create_indexes(database: Database[Document]) -> None:
    # _id stays out of compound keys: nx-27017 rejects later inserts when it is in one.
    database.tasks.create_index([("queue", 1), ("state", 1), ("priority", 1), ("seq", 1)])
    database.tasks.create_index("claim")
    database.dead.create_index([("queue", 1), ("dead_at", 1), ("seq", 1)])
    database.dead.create_index("claim")
    database.flow_values.create_index("node")
    database.flow_nodes.create_index("expires_at")
    database.once.create_index("expires_at")
    # One holder per unique key and queue (see ``unique``): documents without a key
    # are outside the partial index.
    database.tasks.create_index(
        [("queue", 1), ("unique_key", 1)],
        unique=True,
        partialFilterExpression={"unique_key": {"$type": "string"}},
    )
    # Grouped items (see ``groups``): the ring and each group's order, ungrouped
    # documents outside; one leased holder per group slot; the rate tickets.
    database.tasks.create_index(
        [("queue", 1), ("group_key", 1), ("state", 1), ("priority", 1), ("seq", 1)],
        partialFilterExpression={"group_key": {"$gt": ""}},
    )
    database.tasks.create_index(
        [("queue", 1), ("group_key", 1), ("slot", 1)],
        unique=True,
        partialFilterExpression={"slot": {"$type": "int"}},
    )
    database.group_tickets.create_index([("queue", 1), ("group", 1), ("until", 1)])
