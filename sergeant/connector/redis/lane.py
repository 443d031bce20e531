"""A dedicated connection for the hot path of one Redis server.

redis-py's ``execute_command`` takes a pooled connection, checks it for stray
data, runs its observability hooks and gives it back: about a third of a one-task
round trip on a loopback. The lane keeps one connection of its own (same settings
as the pool's: TLS, credentials, timeouts) and sends pre-packed commands on it,
one caller at a time. A caller that finds the lane busy (another thread is on it)
uses the pool as before, so threads never queue behind each other here.

Like the pool's connections, the lane never retries: a broken connection raises
redis-py's error (the node's error boundary translates it) and is reopened on
the next call. Any exception between sending and reading, including one raised
asynchronously (a signal handler's), drops the connection, so a reply still in
flight is never read as the answer to the next command.
"""

from __future__ import annotations

import threading
import typing

import redis

__all__ = ["Lane"]


def bulk(arg: bytes | str | int | float) -> bytes:
    """One argument in the Redis protocol (RESP bulk string), encoded as redis-py does."""
    if not isinstance(arg, bytes):
        arg = (repr(arg) if isinstance(arg, float) else str(arg)).encode()
    return b"$%d\r\n%s\r\n" % (len(arg), arg)


def command(*args: bytes | str | int | float) -> bytes:
    """One whole command in the Redis protocol."""
    return b"*%d\r\n%s" % (len(args), b"".join(map(bulk, args)))


class Lane:
    """One connection to one server for commands sent back to back; thread-safe.

    Commands come packed (:func:`command`, or a cached head plus :func:`bulk`
    arguments), so the hot path packs only what changes from call to call.

    Args:
        pool: the client's pool, whose connection settings the lane copies.
    """

    def __init__(self, pool: redis.ConnectionPool) -> None:
        self._connection = pool.connection_class(**pool.connection_kwargs)
        self._lock = threading.Lock()

    def try_send(self, packed: bytes, replies: int = 1) -> list[typing.Any] | None:
        """Send packed commands in one write and read their ``replies`` (not a
        transaction); None when the lane is busy (another thread is on it).

        Raises:
            redis.exceptions.RedisError: an error reply, or a broken connection
                (which of several commands ran is then unknown).
        """
        if not self._lock.acquire(blocking=False):
            return None
        connection = self._connection
        try:
            connection.send_packed_command([packed])
            return [connection.read_response(disconnect_on_error=False) for _ in range(replies)]
        except BaseException:
            connection.disconnect()
            raise
        finally:
            self._lock.release()

    def close(self) -> None:
        """Close the connection (the next call opens a new one)."""
        with self._lock:
            self._connection.disconnect()
