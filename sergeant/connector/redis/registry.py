"""Operator views on Redis: the live-worker registry and per-priority queue lengths.

The registry is broker-wide, so it lives outside every queue's hash tag, under its
own (``{workers}``), on the first node: ::

    sergeant:{workers}:registry         hash  worker id -> info (JSON the worker wrote)
    sergeant:{workers}:registry:expiry  zset  worker id -> expiry (Unix s, server clock)

Each operation is one Lua script touching both keys (same slot, so it also works on
Redis Cluster). A worker is alive while its expiry is after the server's TIME; reads
check that, so a dead worker vanishes on its own and the sweep in
``worker_register.lua`` only bounds the hash's size.

Scripts are registered per call (``register_script`` builds a small object and
hashes the source; no round trip): these calls run every few seconds at most, not
on the hot path, so no per-client cache is worth its invalidation rules. The
register and unregister scripts run on a full Redis too (their flags line, see
``scripts``: one small record per live worker); a Redis older than 7 refuses that
line, and they run without it (a failed load more per call there).
"""

from __future__ import annotations

import importlib.resources
import typing

import redis
import redis.cluster
import redis.exceptions

from sergeant.connector.redis.keys import PREFIX, QueueKeys
from sergeant.connector.redis.scripts import shebang_refused, without_shebang

__all__ = ["WORKERS_EXPIRY", "WORKERS_INFO", "length_by_priority", "live", "register", "unregister"]

#: The registry's keys (see the module docstring).
WORKERS_INFO = f"{PREFIX}:{{workers}}:registry"
WORKERS_EXPIRY = f"{PREFIX}:{{workers}}:registry:expiry"

#: A single-node or cluster client; both run scripts the same way.
Client = redis.Redis | redis.cluster.RedisCluster

_LUA = importlib.resources.files("sergeant.connector.redis") / "lua"
_SOURCES: dict[str, str] = {
    name: (_LUA / f"{name}.lua").read_text("utf-8")
    for name in ("worker_register", "worker_unregister", "workers_live", "length_by_priority")
}


def _run(
    client: Client, name: str, keys: typing.Sequence[str], args: list[typing.Any]
) -> typing.Any:
    source = _SOURCES[name]
    try:
        return client.register_script(source)(keys, args)
    except redis.exceptions.ResponseError as exc:
        if not source.startswith("#!") or not shebang_refused(exc):
            raise
    return client.register_script(without_shebang(source))(keys, args)


def register(client: Client, worker_id: str, info: bytes, ttl_seconds: float) -> None:
    """Publish or refresh a worker's heartbeat for ``ttl_seconds`` (server clock)."""
    _run(
        client,
        "worker_register",
        (WORKERS_INFO, WORKERS_EXPIRY),
        [worker_id, info, repr(float(ttl_seconds))],
    )


def unregister(client: Client, worker_id: str) -> bool:
    """Remove a worker's heartbeat; True if it was alive."""
    return bool(_run(client, "worker_unregister", (WORKERS_INFO, WORKERS_EXPIRY), [worker_id]))


def live(client: Client) -> list[bytes]:
    """The info of every worker whose heartbeat has not expired."""
    found: list[bytes] = _run(client, "workers_live", (WORKERS_INFO, WORKERS_EXPIRY), [])
    return found


def length_by_priority(client: Client, k: QueueKeys) -> tuple[int, int]:
    """Ready ``(HIGH, NORMAL)`` items of one queue on one node (due delayed included)."""
    keys = (k.high, k.normal, k.delayed_high, k.delayed_normal, k.group_state)
    high, normal = _run(client, "length_by_priority", keys, [])
    return int(high), int(normal)
