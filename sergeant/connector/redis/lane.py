"""A dedicated connection for the hot path of one Redis server.

redis-py's ``execute_command`` takes a pooled connection, checks it for stray
data, runs its observability hooks and gives it back: about a third of a one-task
round trip on a loopback. The lane keeps one connection of its own (same settings
as the pool's: TLS, credentials, timeouts) and sends pre-packed commands on it,
one caller at a time. A caller that finds the lane busy (another thread is on it)
uses the pool as before, so threads never queue behind each other here.

A reply can also be read later (:meth:`Lane.start`): several requests then wait in
flight on the lane, in order (pipelining), while the caller works; meanwhile other
callers find the lane busy.

Like the pool's connections, the lane never retries: a broken connection raises
redis-py's error (the node's error boundary translates it) and is reopened on
the next call. Any exception between sending and reading, including one raised
asynchronously (a signal handler's), drops the connection, so a reply still in
flight is never read as the answer to the next command.
"""

from __future__ import annotations

import collections
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


def with_head(
    head: bytes, head_args: int, args: typing.Sequence[bytes | str | int | float]
) -> bytes:
    """One command whose first ``head_args`` arguments were packed ahead into ``head``
    (with :func:`bulk`), followed by ``args``."""
    return b"*%d\r\n%s%s" % (head_args + len(args), head, b"".join(map(bulk, args)))


class Pending:
    """The reply of a request sent with :meth:`Lane.start`, read by :meth:`result`."""

    __slots__ = ("_done", "_error", "_lane", "_reply")

    def __init__(self, lane: Lane) -> None:
        self._lane = lane
        self._done = False
        self._reply: typing.Any = None
        self._error: BaseException | None = None

    def result(self) -> typing.Any:
        """The reply (read now if it has not been: the ones sent before it first).

        Raises:
            redis.exceptions.RedisError: an error reply, or the connection broke
                before the reply came (the request may or may not have run).
        """
        if not self._done:
            self._lane._read_through(self)
        if self._error is not None:
            raise self._error
        return self._reply


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
        # Requests sent by start() whose replies are still to be read, oldest first.
        self._in_flight: collections.deque[Pending] = collections.deque()

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
            if self._in_flight:
                return None  # replies of started requests come first: use the pool
            connection.send_packed_command([packed])
            return [connection.read_response(disconnect_on_error=False) for _ in range(replies)]
        except BaseException:
            connection.disconnect()
            raise
        finally:
            self._lock.release()

    def start(self, packed: bytes) -> Pending:
        """Send one packed command now; its reply is read by ``Pending.result()``.

        Raises:
            redis.exceptions.RedisError: the request could not be sent.
        """
        with self._lock:
            try:
                self._connection.send_packed_command([packed])
            except BaseException:
                self._drop(self._in_flight)
                raise
            pending = Pending(self)
            self._in_flight.append(pending)
            return pending

    def _read_through(self, wanted: Pending) -> None:
        """Read the replies in flight up to ``wanted``'s (call without the lock)."""
        with self._lock:
            connection, in_flight = self._connection, self._in_flight
            while not wanted._done and in_flight:
                pending = in_flight[0]
                try:
                    pending._reply = connection.read_response(disconnect_on_error=False)
                except redis.exceptions.ResponseError as exc:
                    pending._error = exc  # an error reply: the connection is fine
                except BaseException:
                    self._drop(in_flight)
                    raise
                pending._done = True
                in_flight.popleft()

    def _drop(self, in_flight: collections.deque[Pending]) -> None:
        """Drop the connection; the requests in flight fail (their replies are lost)."""
        self._connection.disconnect()
        lost = redis.exceptions.ConnectionError(
            "the Redis connection was dropped before this reply was read"
        )
        while in_flight:
            pending = in_flight.popleft()
            pending._error, pending._done = lost, True

    def close(self) -> None:
        """Close the connection (the next call opens a new one)."""
        with self._lock:
            self._drop(self._in_flight)
