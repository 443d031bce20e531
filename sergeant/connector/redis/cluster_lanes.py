"""Lanes on a Redis Cluster: one per primary, chosen by the slot of a call's first key.

On one server the hot path skips redis-py through the node's
:class:`~sergeant.connector.redis.lane.Lane`; on a cluster every call went through
``RedisCluster.execute_command`` (its routing, its checks), and a lease could not
send the ``LRANGE`` of its batch behind it in the same write (see
``lease_script``), so a cluster paid more per task than one server, in the worker
and in Redis. Here each primary gets a lane of its own (its connection copies the
settings of the client's connection to that primary), and a queue's calls go on
the lane of the primary that holds the queue's slot, as redis-py's slot map says.

Redis Cluster keeps the redirections to itself: a call on a lane answered MOVED,
ASK, TRYAGAIN or CLUSTERDOWN did not run (the server refuses before it executes),
so it is sent again through redis-py, which follows the redirection and learns
the new map (:func:`redirected`). After a redirection or a broken connection the
lanes are off for :data:`OFF_SECONDS` (every call goes through redis-py, which
refreshes its map on the errors it meets), then each key's primary is looked up
again.
"""

from __future__ import annotations

import threading
import time
import typing

import redis.cluster
import redis.exceptions

from sergeant.connector.redis.lane import Lane

__all__ = ["OFF_SECONDS", "ClusterLanes", "redirected"]

#: Seconds the lanes stay off after a redirection or a broken lane connection.
OFF_SECONDS = 2.0
#: Most keys whose lane is remembered (the first key of each queue's calls).
_KEYS_KEPT = 1024

_REDIRECTIONS = (
    redis.exceptions.AskError,  # MovedError is one
    redis.exceptions.TryAgainError,
    redis.exceptions.ClusterDownError,
)


def redirected(exc: BaseException) -> bool:
    """Whether a cluster node refused a call before running it (MOVED, ASK, TRYAGAIN,
    CLUSTERDOWN): it may be sent again through redis-py."""
    return isinstance(exc, _REDIRECTIONS)


class ClusterLanes:
    """The lanes of one cluster client; thread-safe.

    Args:
        cluster: the client whose slot map routes the calls.
    """

    def __init__(self, cluster: redis.cluster.RedisCluster) -> None:
        self._cluster = cluster
        self._lock = threading.Lock()
        self._by_node: dict[str, Lane] = {}
        self._by_key: dict[str, Lane] = {}
        self._off_until = 0.0

    def for_key(self, key: str) -> Lane | None:
        """The lane of the primary holding ``key``'s slot; None while the lanes are off
        (or redis-py knows no primary for the slot yet)."""
        lane = self._by_key.get(key)
        if lane is not None:
            return lane
        if time.monotonic() < self._off_until:
            return None
        cluster: typing.Any = self._cluster  # redis-py leaves this call untyped
        try:
            node = cluster.get_node_from_key(key)
        except redis.exceptions.RedisClusterException:
            return None  # a slot the map does not cover: redis-py's own call says why
        connection = getattr(node, "redis_connection", None)
        if connection is None:
            return None
        with self._lock:
            lane = self._by_node.get(node.name)
            if lane is None:
                lane = self._by_node[node.name] = Lane(connection.connection_pool)
            if len(self._by_key) >= _KEYS_KEPT:
                self._by_key.clear()
            self._by_key[key] = lane
        return lane

    def after_error(self, exc: BaseException) -> bool:
        """A call on one of these lanes raised ``exc``: True when it was a redirection
        (the call did not run) or a broken connection, which turn the lanes off for
        :data:`OFF_SECONDS` (:meth:`failed`)."""
        if redirected(exc) or not isinstance(exc, redis.exceptions.ResponseError):
            self.failed()
            return True
        return False

    def failed(self) -> None:
        """A lane met a redirection or lost its connection: forget where keys are and
        leave the calls to redis-py for :data:`OFF_SECONDS`."""
        with self._lock:
            self._by_key.clear()
            self._off_until = time.monotonic() + OFF_SECONDS

    def close(self) -> None:
        """Close every lane's connection."""
        with self._lock:
            lanes = list(self._by_node.values())
            self._by_node.clear()
            self._by_key.clear()
        for lane in lanes:
            lane.close()
