"""Redis nodes: building clients (single server or cluster) and wrapping driver errors.

A :class:`Node` is also the error boundary: ``with node:`` turns every redis-py
exception raised inside into a :class:`~sergeant.errors.ConnectorError` subclass
naming the node's address (and the ACL user when credentials are refused),
chained with ``from``. A Redis Cluster is one :class:`Node` whose client is
redis-py's ``RedisCluster``: it routes each command, and each EVALSHA, by the slot
of its first key, and follows MOVED/ASK redirections itself (an FCALL is sent to
the node of its first key's slot, on that primary's lane when it is free: see
``calls`` and ``cluster_lanes``). A sharded cluster
(``shards=N``) is N nodes: the first and N - 1 *views* of it (:meth:`Node.view`),
sharing its client, each naming a queue's keys with its shard's hash tag
(:meth:`Node.queue_keys`, see :mod:`sergeant.connector.redis.shards`).
"""

from __future__ import annotations

import types
import typing

import redis
import redis.backoff
import redis.cluster
import redis.exceptions
import redis.retry

from sergeant.connector.redis import keys, shards
from sergeant.connector.redis.cluster_lanes import ClusterLanes
from sergeant.connector.redis.functions import Library, build_library
from sergeant.connector.redis.group_scripts import PUSH_GROUPED, GroupScripts
from sergeant.connector.redis.lane import Lane
from sergeant.connector.redis.scripts import LIB, PRELUDE, SOURCES, Scripts
from sergeant.connector.redis.settings import NodeConfig
from sergeant.connector.redis.tokens import Tokens
from sergeant.errors import BrokerFull, BrokerUnavailable, ConnectionLost, ConnectorError

__all__ = ["LIBRARY", "Client", "Node", "translate_error"]

#: Seconds to wait for a TCP connection, so an unreachable node fails quickly.
DEFAULT_SOCKET_CONNECT_TIMEOUT_SECONDS = 2.0
#: Seconds to wait for a reply; longer than the longest BLPOP a blocking lease sends.
DEFAULT_SOCKET_TIMEOUT_SECONDS = 5.0
#: Seconds a pooled connection may idle before it is PINGed before reuse.
DEFAULT_HEALTH_CHECK_INTERVAL_SECONDS = 30

#: A client of one server or of a whole cluster.
Client = redis.Redis | redis.cluster.RedisCluster
#: What the error boundary translates: redis-py errors, and the cluster client's own
#: ``RedisClusterException`` (no cluster node reachable), which is not a RedisError.
_DRIVER_ERRORS = (redis.exceptions.RedisError, redis.exceptions.RedisClusterException)
#: Every script of the connector as one Redis 7 function library (see ``functions``).
LIBRARY = build_library({**SOURCES, "push_grouped": PUSH_GROUPED}, LIB, PRELUDE)


def translate_error(exc: Exception, address: str, username: str | None = None) -> ConnectorError:
    """The Sergeant error for a redis-py error raised while talking to ``address``."""
    if isinstance(exc, (redis.exceptions.AuthenticationError, redis.exceptions.AuthorizationError)):
        return BrokerUnavailable(
            f"Redis at {address} refused the credentials of user {username or 'default'!r} "
            f"({exc}); check the 'username' and 'password' (or the URL's user:password@)"
        )
    # Before Redis 7 a script's refused write comes wrapped: "ERR Error running script
    # ... -OOM command not allowed ...".
    if isinstance(exc, redis.exceptions.OutOfMemoryError) or "-OOM command not" in str(exc):
        # Refused before it wrote anything (Redis checks memory before a command, and a
        # script's first write): nothing of this operation is stored on this node.
        return BrokerFull(
            f"Redis at {address} is out of memory (used memory is above 'maxmemory' and "
            "nothing may be evicted): nothing of this operation was stored there; it "
            "refuses pushes and results until workers drain its queues, which frees "
            "memory; raise 'maxmemory' or add workers"
        )
    if isinstance(exc, redis.exceptions.BusyLoadingError):
        return BrokerUnavailable(f"Redis at {address} is loading its data set; retry shortly")
    if isinstance(exc, redis.exceptions.RedisClusterException) and "connected" in str(exc):
        # redis-py: "Redis Cluster cannot be connected. Please provide at least one
        # reachable node ..."
        return BrokerUnavailable(
            f"the Redis Cluster at {address} could not be reached ({exc}); "
            "check the addresses and that the cluster is up"
        )
    if isinstance(exc, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)):
        text = str(exc)
        # redis-py says "connecting to" only when the TCP connection could not be made.
        if "connecting to" in text:
            return BrokerUnavailable(
                f"Redis at {address} could not be reached ({text}); "
                "check the address and that redis-server is running"
            )
        return ConnectionLost(
            f"the connection to Redis at {address} broke during an operation ({text}); "
            "the operation may be retried"
        )
    return ConnectorError(f"Redis at {address} failed: {exc}")


def _client_options(config: NodeConfig) -> dict[str, typing.Any]:
    options: dict[str, typing.Any] = {
        "password": config.password,
        "username": config.username,
        "socket_connect_timeout": DEFAULT_SOCKET_CONNECT_TIMEOUT_SECONDS,
        "socket_timeout": DEFAULT_SOCKET_TIMEOUT_SECONDS,
        "health_check_interval": DEFAULT_HEALTH_CHECK_INTERVAL_SECONDS,
    }
    if config.ssl:
        options.update(
            ssl=True,
            ssl_ca_certs=config.ssl_ca_certs,
            ssl_certfile=config.ssl_certfile,
            ssl_keyfile=config.ssl_keyfile,
        )
    return options


def _build_client(configs: typing.Sequence[NodeConfig], cluster: bool) -> Client:
    # No retries inside redis-py on timeouts or connection errors: a retried push could
    # run twice; the caller decides. (``retry_on_timeout`` is deprecated: Retry covers
    # it.) The cluster client still follows MOVED/ASK/TRYAGAIN replies, which mean the
    # command did not run, so following them is safe.
    no_retry = redis.retry.Retry(redis.backoff.NoBackoff(), 0)
    first = configs[0]
    if not cluster:
        options = _client_options(first)
        return redis.Redis(first.host, first.port, first.database, retry=no_retry, **options)
    # ClusterNode's __init__ carries no annotations in redis-py.
    seeds = [
        redis.cluster.ClusterNode(config.host, config.port)  # type: ignore[no-untyped-call]
        for config in configs
    ]
    return redis.cluster.RedisCluster(startup_nodes=seeds, retry=no_retry, **_client_options(first))


class Node:
    """A client for one server (or one cluster), its scripts, and its error boundary.

    Builds the client at once; for a cluster this asks the seeds for the slot map.

    Args:
        configs: the server's settings; for a cluster, every seed node's.
        index: its position among independent nodes (or its shard number);
            reported in ``Delivery.node``.
        cluster: whether ``configs`` are seeds of one Redis Cluster.
        shard_count: how many shards each queue has (above 1 on a cluster only).

    Raises:
        BrokerUnavailable: a cluster none of whose seeds answered.
    """

    __slots__ = (
        "address",
        "client",
        "cluster_lanes",
        "group_limits",
        "group_scripts",
        "index",
        "lane",
        "library",
        "owns_client",
        "scripts",
        "shards",
        "tokens",
        "username",
    )

    def __init__(
        self,
        configs: typing.Sequence[NodeConfig],
        index: int,
        cluster: bool,
        shard_count: int = 1,
    ) -> None:
        self.index = index
        #: How many shards each queue has; this node is shard ``index`` when above 1.
        self.shards = shard_count
        #: False for a view: closing is left to the node whose client it shares.
        self.owns_client = True
        self.address = ",".join(config.address for config in configs)
        self.username = configs[0].username
        with self:
            self.client: Client = _build_client(configs, cluster)
        #: A single server's dedicated connection for the hot path (None on a cluster).
        self.lane: Lane | None = None
        #: A cluster's lanes, one per primary (see ``cluster_lanes``); None on one server.
        self.cluster_lanes: ClusterLanes | None = None
        if isinstance(self.client, redis.Redis):
            self.lane = Lane(self.client.connection_pool)
        else:
            self.cluster_lanes = ClusterLanes(self.client)
        #: The function library on this node: FCALL once loaded, else EVALSHA.
        self.library = Library(self.client, LIBRARY, self.address)
        self.scripts = Scripts(self.client, self.lane, self.library, self.cluster_lanes)
        #: The fencing tokens this client chooses for its leases on this node.
        self.tokens = Tokens()
        #: The group scripts, loaded on first use.
        self.group_scripts: GroupScripts | None = None
        #: Per queue (its ``QueueKeys.leases``), the group limits its leases send.
        self.group_limits: dict[str, str] = {}

    def view(self, shard: int, shard_count: int = 0) -> Node:
        """Shard ``shard`` of this cluster: the same client and scripts, its own tokens;
        ``shard_count``: of that many shards (default: this node's count)."""
        other = Node.__new__(Node)
        for name in Node.__slots__:
            setattr(other, name, getattr(self, name))
        other.index = shard
        other.shards = shard_count or self.shards
        other.owns_client = False
        other.tokens = Tokens()
        other.group_scripts = None
        return other

    def tag(self, queue: str) -> str:
        """The hash tag (inside the braces) of ``queue``'s keys on this node."""
        if self.shards == 1:
            return queue
        return shards.shard_tags(queue, self.shards)[self.index]

    def queue_keys(self, queue: str) -> keys.QueueKeys:
        """The keys of ``queue`` on this node; on one server, independent servers or
        an unsharded cluster exactly ``keys.queue_keys(queue)``."""
        return keys.queue_keys(self.tag(queue))

    def __enter__(self) -> Node:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        if isinstance(exc, _DRIVER_ERRORS):
            raise translate_error(exc, self.address, self.username) from exc

    def close(self) -> None:
        """Close the client's pooled connections and its lane (a view leaves them)."""
        if not self.owns_client:
            return
        if self.lane is not None:
            self.lane.close()
        if self.cluster_lanes is not None:
            self.cluster_lanes.close()
        self.client.close()
