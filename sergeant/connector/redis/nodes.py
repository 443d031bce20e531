"""Redis nodes: validating their settings, building clients, and wrapping driver errors.

A :class:`Node` is also the error boundary: ``with node:`` turns every redis-py
exception raised inside into a :class:`~sergeant.errors.ConnectorError` subclass
naming the node's address, chained with ``from``.
"""

from __future__ import annotations

import dataclasses
import types
import typing

import redis
import redis.backoff
import redis.exceptions
import redis.retry

from sergeant.connector.redis.scripts import Scripts
from sergeant.errors import BrokerUnavailable, ConfigError, ConnectionLost, ConnectorError

__all__ = ["ACCEPTED_NODE_KEYS", "Node", "NodeConfig", "parse_nodes", "translate_error"]

#: Keys a ``nodes`` entry may have (the Sergeant 0.27 form, plus ``username``).
ACCEPTED_NODE_KEYS = ("host", "port", "password", "database", "username")
#: Seconds to wait for a TCP connection, so an unreachable node fails quickly.
DEFAULT_SOCKET_CONNECT_TIMEOUT_SECONDS = 2.0
#: Seconds to wait for a reply; longer than the longest BLPOP a blocking lease sends.
DEFAULT_SOCKET_TIMEOUT_SECONDS = 5.0
#: Seconds a pooled connection may idle before it is PINGed before reuse.
DEFAULT_HEALTH_CHECK_INTERVAL_SECONDS = 30


@dataclasses.dataclass(frozen=True)
class NodeConfig:
    """One independent Redis server.

    Attributes:
        host: its host name or address.
        port: its TCP port.
        password: the AUTH password, or None.
        database: the database number.
        username: the ACL user name, or None for the default user.
    """

    host: str
    port: int
    password: str | None = None
    database: int = 0
    username: str | None = None

    @property
    def address(self) -> str:
        """``host:port``, as shown in error messages."""
        return f"{self.host}:{self.port}"


def parse_nodes(nodes: object) -> list[NodeConfig]:
    """Check the ``nodes`` parameter and build one :class:`NodeConfig` per entry.

    Raises:
        ConfigError: ``nodes`` is empty or not a list of dicts, an entry has an
            unknown key, or lacks ``host``/``port``.
    """
    if not isinstance(nodes, (list, tuple)) or not nodes:
        raise ConfigError(
            f"Connector.params.nodes is {nodes!r}; give a non-empty list of "
            "{'host': ..., 'port': ..., 'password': ..., 'database': ...} dicts"
        )
    accepted = ", ".join(repr(key) for key in ACCEPTED_NODE_KEYS)
    configs = []
    for index, node in enumerate(nodes):
        field = f"Connector.params.nodes[{index}]"
        if not isinstance(node, typing.Mapping):
            raise ConfigError(f"{field} is {node!r}; give a dict with the keys {accepted}")
        for key in node:
            if key not in ACCEPTED_NODE_KEYS:
                raise ConfigError(f"{field} has the unknown key {key!r}; use only {accepted}")
        for key in ("host", "port"):
            if key not in node:
                raise ConfigError(f"{field} has no {key!r}; it needs 'host' and 'port'")
        configs.append(
            NodeConfig(
                host=str(node["host"]),
                port=int(node["port"]),
                password=node.get("password"),
                database=int(node.get("database") or 0),
                username=node.get("username"),
            )
        )
    return configs


def translate_error(exc: redis.exceptions.RedisError, address: str) -> ConnectorError:
    """The Sergeant error for a redis-py error raised while talking to ``address``."""
    if isinstance(exc, (redis.exceptions.AuthenticationError, redis.exceptions.AuthorizationError)):
        return BrokerUnavailable(
            f"Redis at {address} refused the credentials ({exc}); "
            "check the node's 'username' and 'password'"
        )
    if isinstance(exc, redis.exceptions.BusyLoadingError):
        return BrokerUnavailable(f"Redis at {address} is loading its data set; retry shortly")
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


class Node:
    """A client for one server, its registered scripts, and its error boundary.

    Args:
        config: the server's settings.
        index: its position in ``nodes``; reported in ``Delivery.node``.
    """

    __slots__ = ("address", "client", "index", "scripts")

    def __init__(self, config: NodeConfig, index: int) -> None:
        self.index = index
        self.address = config.address
        # No retries inside redis-py (on timeouts or errors): a retried push could run
        # twice; the caller decides. (``retry_on_timeout`` is deprecated: Retry covers it.)
        self.client = redis.Redis(
            host=config.host,
            port=config.port,
            db=config.database,
            password=config.password,
            username=config.username,
            socket_connect_timeout=DEFAULT_SOCKET_CONNECT_TIMEOUT_SECONDS,
            socket_timeout=DEFAULT_SOCKET_TIMEOUT_SECONDS,
            health_check_interval=DEFAULT_HEALTH_CHECK_INTERVAL_SECONDS,
            retry=redis.retry.Retry(redis.backoff.NoBackoff(), 0),
        )
        self.scripts = Scripts(self.client)

    def __enter__(self) -> Node:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        if isinstance(exc, redis.exceptions.RedisError):
            raise translate_error(exc, self.address) from exc

    def close(self) -> None:
        """Close the client's pooled connections."""
        self.client.close()
