"""Redis connector settings: the ``params`` forms, Redis URLs and TLS options, validated.

Accepted ``Connector.params`` (exactly one of ``nodes``, ``url``, ``urls``)::

    {'nodes': [{'host': ..., 'port': ..., 'password': ..., 'database': ...}, ...]}
        the Sergeant 0.27 form: independent nodes (``'cluster': True`` makes them the
        seed nodes of one Redis Cluster instead; ``'ssl': True`` turns TLS on)
    {'url': 'redis://[user:password@]host[:port][/database]'}
        one node; ``rediss://`` for TLS
    {'url': 'redis+cluster://[user:password@]host:port,host:port,...'}
        one Redis Cluster, given by any of its nodes; ``rediss+cluster://`` for TLS
    {'urls': ['redis://...', 'rediss://...', ...]}
        independent nodes, one URL each

``shards`` (an int from 1 to :data:`MAX_SHARDS`, default 1), as a params key or
the cluster URL's query parameter (``redis+cluster://h:7000,h:7001?shards=3``),
spreads each queue over that many hash slots of a Redis Cluster (see
:mod:`sergeant.connector.redis.shards`); it applies to a cluster only.

TLS options (``ssl_ca_certs``, ``ssl_certfile``, ``ssl_keyfile``: file paths) are
accepted as params keys, applying to every node, or as URL query parameters
(``rediss://h:6380/0?ssl_ca_certs=/etc/ca.pem``), which win for that URL. They
need TLS to be on (a ``rediss`` scheme or ``'ssl': True``).
"""

from __future__ import annotations

import dataclasses
import typing
import urllib.parse

from sergeant.connector.redis.shards import MAX_SHARDS
from sergeant.errors import ConfigError

__all__ = [
    "ACCEPTED_NODE_KEYS",
    "MAX_SHARDS",
    "TLS_OPTIONS",
    "URL_SCHEMES",
    "NodeConfig",
    "RedisSettings",
    "parse_nodes",
    "parse_params",
    "parse_url",
]

#: Keys a ``nodes`` entry may have (the Sergeant 0.27 form, plus ``username``).
ACCEPTED_NODE_KEYS = ("host", "port", "password", "database", "username")
#: TLS options, as params keys or URL query parameters (file paths).
TLS_OPTIONS = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile")
#: Accepted URL schemes: plain, TLS, cluster, TLS cluster.
URL_SCHEMES = ("redis", "rediss", "redis+cluster", "rediss+cluster")
#: Port used when a URL gives none.
DEFAULT_PORT = 6379


@dataclasses.dataclass(frozen=True)
class NodeConfig:
    """One Redis server (an independent node, or a seed node of a cluster).

    Attributes:
        host: its host name or address.
        port: its TCP port.
        password: the AUTH password, or None.
        database: the database number (always 0 in a cluster).
        username: the ACL user name, or None for the default user.
        ssl: whether to speak TLS to it.
        ssl_ca_certs: the CA bundle to verify its certificate with (None: system CAs).
        ssl_certfile: the client certificate to present, or None.
        ssl_keyfile: the client certificate's private key, or None.
    """

    host: str
    port: int
    password: str | None = None
    database: int = 0
    username: str | None = None
    ssl: bool = False
    ssl_ca_certs: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None

    @property
    def address(self) -> str:
        """``host:port``, as shown in error messages."""
        return f"{self.host}:{self.port}"


@dataclasses.dataclass(frozen=True)
class RedisSettings:
    """Validated Redis connector settings.

    Attributes:
        nodes: the independent nodes, or the cluster's seed nodes.
        cluster: True when ``nodes`` are seeds of one Redis Cluster.
        shards: how many hash slots each queue is spread over (1 unless a cluster).
    """

    nodes: tuple[NodeConfig, ...]
    cluster: bool = False
    shards: int = 1


def _fail(field: str, value: object, expected: str) -> typing.NoReturn:
    raise ConfigError(f"Connector.params.{field} is {value!r}; {expected}")


def parse_params(
    nodes: object = None,
    url: object = None,
    urls: object = None,
    cluster: object = False,
    tls: typing.Mapping[str, object] | None = None,
    shards: object = 1,
) -> RedisSettings:
    """Check the connector params and build the settings.

    Args:
        nodes: the 0.27 ``nodes`` list, or None.
        url: one ``redis``/``rediss``/``redis+cluster``/``rediss+cluster`` URL, or None.
        urls: a list of ``redis``/``rediss`` URLs of independent nodes, or None.
        cluster: True to treat ``nodes`` as the seeds of one Redis Cluster.
        tls: ``ssl`` (bool) and the :data:`TLS_OPTIONS` given as params keys.
        shards: the params key ``shards`` (a cluster URL may give it instead).

    Raises:
        ConfigError: not exactly one of ``nodes``/``url``/``urls``, or a bad value,
            naming the key and the value.
    """
    given = [name for name, value in (("nodes", nodes), ("url", url), ("urls", urls)) if value]
    if len(given) != 1:
        raise ConfigError(
            f"Connector.params for 'redis' give {given or 'none'} of 'nodes', 'url', 'urls'; "
            "give exactly one"
        )
    if not isinstance(cluster, bool):
        _fail("cluster", cluster, "use True or False (give a cluster URL as 'url')")
    options = _tls_defaults(tls or {})
    count = check_shards(shards, "shards")
    if nodes:
        if options["ssl"] is False and any(options[name] for name in TLS_OPTIONS):
            _fail("ssl", False, "set 'ssl': True to use the TLS options")
        seeds = tuple(parse_nodes(nodes, options))
        return RedisSettings(seeds, cluster, _on_cluster(count, cluster, len(seeds)))
    if cluster:
        _fail("cluster", cluster, "it applies to 'nodes' only; use a redis+cluster:// 'url'")
    if url:
        return _from_url(url, count, options)
    if not isinstance(urls, (list, tuple)):
        _fail("urls", urls, "give a list of redis:// or rediss:// URLs, one per node")
    configs = []
    for index, one in enumerate(urls):
        parsed, is_cluster = parse_url(one, f"urls[{index}]", options)
        if is_cluster:
            _fail(f"urls[{index}]", one, "give a cluster as 'url', not in 'urls'")
        configs += parsed
    return RedisSettings(tuple(configs), shards=_on_cluster(count, False, len(configs)))


def _from_url(url: object, shards: int, options: dict[str, typing.Any]) -> RedisSettings:
    query = _url_shards(url)
    if query is not None and shards != 1 and query != shards:
        _fail("shards", shards, f"the url gives shards={query}; give it once")
    configs, is_cluster = parse_url(url, "url", options)
    count = shards if query is None else query
    return RedisSettings(tuple(configs), is_cluster, _on_cluster(count, is_cluster, 1))


def check_shards(value: object, field: str) -> int:
    """``value`` as a shard count, or a ConfigError naming ``field``."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SHARDS:
        _fail(field, value, f"give an int from 1 to {MAX_SHARDS} (1: no sharding)")
    return value


def _on_cluster(shards: int, cluster: bool, node_count: int) -> int:
    if shards > 1 and not cluster:
        why = (
            "independent nodes already spread every queue over all of them"
            if node_count > 1
            else "a single server gains nothing from it"
        )
        _fail("shards", shards, f"it applies to a Redis Cluster only ({why})")
    return shards


def _url_shards(url: object) -> int | None:
    """The ``shards`` query parameter of ``url``, checked, or None."""
    if not isinstance(url, str):
        return None
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query, keep_blank_values=True)
    given = query.get("shards")
    if given is None:
        return None
    text = given[-1]
    return check_shards(int(text) if text.isdigit() else text, "url's shards")


def _tls_defaults(tls: typing.Mapping[str, object]) -> dict[str, typing.Any]:
    ssl = tls.get("ssl", False)
    if not isinstance(ssl, bool):
        _fail("ssl", ssl, "use True or False")
    options: dict[str, typing.Any] = {"ssl": ssl}
    for name in TLS_OPTIONS:
        value = tls.get(name)
        if value is not None and not isinstance(value, str):
            _fail(name, value, "give a file path")
        options[name] = value
    return options


def parse_nodes(
    nodes: object, tls: typing.Mapping[str, typing.Any] | None = None
) -> list[NodeConfig]:
    """Check the 0.27 ``nodes`` parameter and build one :class:`NodeConfig` per entry.

    Raises:
        ConfigError: ``nodes`` is empty or not a list of dicts, an entry has an
            unknown key, or lacks ``host``/``port``.
    """
    if not isinstance(nodes, (list, tuple)) or not nodes:
        _fail(
            "nodes",
            nodes,
            "give a non-empty list of "
            "{'host': ..., 'port': ..., 'password': ..., 'database': ...} dicts",
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
                **(tls or {}),
            )
        )
    return configs


def parse_url(
    url: object, field: str, tls: typing.Mapping[str, typing.Any] | None = None
) -> tuple[list[NodeConfig], bool]:
    """Parse one Redis URL (see the module docstring) into node configs.

    Args:
        url: the URL.
        field: its params key, for error messages (``'url'``, ``'urls[1]'``).
        tls: TLS options given as params keys; the URL's query parameters win.

    Returns:
        ``(nodes, cluster)``: several nodes only for a cluster URL (its seeds).

    Raises:
        ConfigError: an unknown scheme or query parameter, a bad port or database,
            several hosts outside a cluster URL, or TLS options without TLS.
    """
    if not isinstance(url, str):
        _fail(field, url, "give a URL such as 'redis://host:6379/0'")
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in URL_SCHEMES:
        accepted = ", ".join(f"{name}://" for name in URL_SCHEMES)
        _fail(field, url, f"use one of the schemes {accepted}")
    cluster = scheme.endswith("+cluster")
    if not cluster and _url_shards(url) not in (None, 1):
        _fail(field, url, "the query parameter 'shards' applies to a redis+cluster:// URL only")
    userinfo, _, hosts = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    options = {**(tls or {}), **_query_options(parts.query, field, url)}
    options["ssl"] = scheme.startswith("rediss") or bool(options.get("ssl"))
    if not options["ssl"] and any(options.get(name) for name in TLS_OPTIONS):
        _fail(field, url, "TLS options need TLS: use rediss:// (or rediss+cluster://)")
    database = parts.path.lstrip("/") or "0"
    if not database.isdigit() or (cluster and database != "0"):
        expected = "a cluster has only database 0" if cluster else "use a number, as in /0"
        _fail(field, url, f"the database {database!r} is not valid: {expected}")
    addresses = [_address(host, field, url) for host in hosts.split(",")]
    if len(addresses) > 1 and not cluster:
        _fail(field, url, "name one host, or use redis+cluster:// for a cluster")
    configs = [
        NodeConfig(
            host=host,
            port=port,
            password=urllib.parse.unquote(password) if password else None,
            database=int(database),
            username=urllib.parse.unquote(user) if user else None,
            **options,
        )
        for host, port in addresses
    ]
    return configs, cluster


def _query_options(query: str, field: str, url: str) -> dict[str, str]:
    options: dict[str, str] = {}
    for name, value in urllib.parse.parse_qsl(query, keep_blank_values=True):
        if name == "shards":
            continue  # read by parse_params (``_url_shards``)
        if name not in TLS_OPTIONS:
            accepted = ", ".join(repr(option) for option in (*TLS_OPTIONS, "shards"))
            _fail(field, url, f"the query parameter {name!r} is unknown; use only {accepted}")
        options[name] = value
    return options


def _address(host: str, field: str, url: str) -> tuple[str, int]:
    try:
        parsed = urllib.parse.urlsplit("//" + host)
        port = parsed.port or DEFAULT_PORT
    except ValueError:
        _fail(field, url, f"the address {host!r} is not host:port")
    if not parsed.hostname:
        _fail(field, url, "a host is missing; write it as redis://host:port")
    return parsed.hostname, port
