"""A dedicated connection for the hot path of one Redis server.

redis-py's ``execute_command`` takes a pooled connection, checks it for stray
data, runs its observability hooks and gives it back: about a third of a one-task
round trip on a loopback. The lane keeps one connection of its own (same settings
as the pool's: TLS, credentials, timeouts) and sends pre-packed commands on it,
one caller at a time. A caller that finds the lane busy (another thread is on it)
uses the pool as before, so threads never queue behind each other here.

A reply can also be read later (:meth:`Lane.start`): several requests then wait in
flight on the lane, in order (pipelining), while the caller works; meanwhile other
callers find the lane busy. Requests started together (:meth:`Lane.corked`: a
worker's pulls sent ahead after a batch) go out in one socket write at the end of
the block, so the server reads them at once too, instead of one write each.

Once connected, the lane writes to the connection's socket and reads replies
with hiredis straight from it: redis-py's ``send_packed_command`` and
``read_response`` spend about 3 µs a call on checks a lane does not need.

Like the pool's connections, the lane never retries: a broken connection raises
redis-py's error (the node's error boundary translates it) and is reopened on
the next call. Any exception between sending and reading, including one raised
asynchronously (a signal handler's), drops the connection, so a reply still in
flight is never read as the answer to the next command.
"""

from __future__ import annotations

import collections
import contextlib
import threading
import typing
from collections.abc import Iterator

import hiredis
import redis

__all__ = ["Arg", "Lane"]

#: What redis-py accepts as a command's argument.
Arg = bytes | str | int | float

_READ_SIZE = 65536
_NOT_ENOUGH_DATA = object()


def bulk(arg: Arg) -> bytes:
    """One argument in the Redis protocol (RESP bulk string), encoded as redis-py does."""
    if not isinstance(arg, bytes):
        arg = (repr(arg) if isinstance(arg, float) else str(arg)).encode()
    return b"$%d\r\n%s\r\n" % (len(arg), arg)


def command(*args: Arg) -> bytes:
    """One whole command in the Redis protocol."""
    return b"*%d\r\n%s" % (len(args), b"".join(map(bulk, args)))


def with_head(head: bytes, head_args: int, args: typing.Sequence[Arg]) -> bytes:
    """One command whose first ``head_args`` arguments were packed ahead into ``head``
    (with :func:`bulk`), followed by ``args``."""
    raw = typing.cast("typing.Sequence[bytes]", args)  # checked by the format itself
    try:  # all bytes (a push's entries): one format each, no call of bulk
        packed = b"".join([b"$%d\r\n%s\r\n" % (len(arg), arg) for arg in raw])
    except TypeError:  # a str or a number among them
        packed = b"".join(map(bulk, args))
    return b"*%d\r\n%s%s" % (head_args + len(args), head, packed)


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


class _Wire:
    """Writes to one redis-py connection's socket and reads replies from it, as its
    hiredis parser would (same error classes), without redis-py's per-call checks;
    redis-py's own calls to connect, and where its internals are not as expected."""

    def __init__(self, connection: typing.Any) -> None:  # a redis.Connection (untyped calls)
        self._connection = connection
        self._sock: typing.Any = None  # the socket self._reader reads
        self._reader: typing.Any = None
        self._buffer = bytearray(_READ_SIZE)

    def send(self, packed: bytes) -> None:
        """Write packed commands (connecting first if need be).

        Raises:
            redis.exceptions.TimeoutError, redis.exceptions.ConnectionError: as redis-py.
        """
        sock: typing.Any = getattr(self._connection, "_sock", None)
        if sock is None or sock is not self._sock or self._reader is None:
            self._connection.send_packed_command([packed])
            return
        try:
            sock.sendall(packed)
        except TimeoutError:
            raise redis.exceptions.TimeoutError("Timeout writing to socket") from None
        except OSError as exc:
            raise redis.exceptions.ConnectionError(f"Error writing to socket: {exc}") from exc

    def read(self) -> typing.Any:
        """The next reply; an error reply is raised (as redis-py raises it).

        Raises:
            redis.exceptions.TimeoutError: no reply within the socket timeout.
            redis.exceptions.ConnectionError: the connection broke or is closed.
        """
        connection = self._connection
        sock = getattr(connection, "_sock", None)
        if sock is not self._sock:  # a new connection: its handshake was read by redis-py
            self._sock, self._reader = sock, self._new_reader()
        reader = self._reader
        if sock is None or reader is None:
            return connection.read_response(disconnect_on_error=False)
        reply = reader.gets()
        while reply is _NOT_ENOUGH_DATA:
            try:
                size = sock.recv_into(self._buffer)
            except TimeoutError:
                raise redis.exceptions.TimeoutError("Timeout reading from socket") from None
            except OSError as exc:
                raise redis.exceptions.ConnectionError(f"Error reading from socket: {exc}") from exc
            if size == 0:
                raise redis.exceptions.ConnectionError("Connection closed by server.")
            reader.feed(self._buffer, 0, size)
            reply = reader.gets()
        # As redis-py: error replies come as exceptions (LOADING, for one, as a
        # ConnectionError), at the top or first in an array.
        if isinstance(reply, redis.exceptions.RedisError):
            raise reply
        if type(reply) is list and reply and isinstance(reply[0], redis.exceptions.ConnectionError):
            raise reply[0]
        return reply

    def _new_reader(self) -> typing.Any:
        """A hiredis reader set up as redis-py's parser sets up its own; None to use
        redis-py's (a pure-Python parser, or internals of another redis-py version)."""
        connection = self._connection
        parse_error = getattr(getattr(connection, "_parser", None), "parse_error", None)
        if parse_error is None or not hasattr(connection, "encoder"):
            return None
        encoder = connection.encoder
        kwargs: dict[str, typing.Any] = {
            "protocolError": redis.exceptions.InvalidResponse,
            "replyError": parse_error,
            "notEnoughData": _NOT_ENOUGH_DATA,
        }
        if encoder.decode_responses:
            kwargs["encoding"], kwargs["errors"] = encoder.encoding, encoder.encoding_errors
        return hiredis.Reader(**kwargs)


class Lane:
    """One connection to one server for commands sent back to back; thread-safe.

    Commands come packed (:func:`command`, or a cached head plus :func:`bulk`
    arguments), so the hot path packs only what changes from call to call.

    Args:
        pool: the client's pool, whose connection settings the lane copies.
    """

    def __init__(self, pool: redis.ConnectionPool) -> None:
        self._connection = pool.connection_class(**pool.connection_kwargs)
        self._wire = _Wire(self._connection)
        self._lock = threading.Lock()
        # Requests sent by start() whose replies are still to be read, oldest first.
        self._in_flight: collections.deque[Pending] = collections.deque()
        # Inside corked(): how deep, and the requests started but not yet written.
        self._corks = 0
        self._unsent: list[bytes] = []

    def try_send(self, packed: bytes, replies: int = 1) -> list[typing.Any] | None:
        """Send packed commands in one write and read their ``replies`` (not a
        transaction); None when the lane is busy (another thread is on it).

        Raises:
            redis.exceptions.RedisError: an error reply, or a broken connection
                (which of several commands ran is then unknown).
        """
        return self.try_send_parts((packed,), replies)

    def try_send_parts(
        self, parts: typing.Iterable[bytes], replies: int = 1
    ) -> list[typing.Any] | None:
        """:meth:`try_send` of commands written part by part, each as soon as
        ``parts`` makes it: the server reads the first while the next is packed.

        Parts are made only once the lane is taken; should making one raise, the
        connection is dropped, so a command left half-written never runs.
        """
        if not self._lock.acquire(blocking=False):
            return None
        connection = self._connection
        try:
            if self._in_flight:
                return None  # replies of started requests come first: use the pool
            send = self._wire.send
            for part in parts:
                send(part)
            read = self._wire.read
            return [read() for _ in range(replies)]
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
        return self.start_all(packed, 1)[0]

    def start_all(self, packed: bytes, replies: int) -> list[Pending]:
        """Send packed commands now, in one write; each of their ``replies`` is read
        by its ``Pending.result()``, in order.

        Raises:
            redis.exceptions.RedisError: the requests could not be sent.
        """
        with self._lock:
            if self._corks:
                self._unsent.append(packed)  # written at the end of corked()
            else:
                try:
                    self._wire.send(packed)
                except BaseException:
                    self._drop(self._in_flight)
                    raise
            pendings = [Pending(self) for _ in range(replies)]
            self._in_flight.extend(pendings)
            return pendings

    @contextlib.contextmanager
    def corked(self) -> Iterator[None]:
        """Requests :meth:`start`-ed inside go out in one write at its end, their
        replies read in order as ever; reading a reply meanwhile writes them first.

        A write that fails drops the connection: the requests then fail when their
        replies are read (``ConnectionError``), as a reply lost in flight does.
        """
        with self._lock:
            self._corks += 1
        try:
            yield
        finally:
            with self._lock:
                self._corks -= 1
                if not self._corks:
                    self._write_unsent()

    def _write_unsent(self) -> None:
        """Write what :meth:`corked` held back, in one write (with the lock)."""
        if not self._unsent:
            return
        packed = b"".join(self._unsent)
        self._unsent.clear()
        try:
            self._wire.send(packed)
        except Exception:
            self._drop(self._in_flight)  # their results raise: the loop retries them
        except BaseException:
            self._drop(self._in_flight)
            raise

    def _read_through(self, wanted: Pending) -> None:
        """Read the replies in flight up to ``wanted``'s (call without the lock)."""
        with self._lock:
            self._write_unsent()  # requests held back by corked() go first
            read, in_flight = self._wire.read, self._in_flight
            while not wanted._done and in_flight:
                pending = in_flight[0]
                try:
                    pending._reply = read()
                except redis.exceptions.ResponseError as exc:
                    pending._error = exc  # an error reply: the connection is fine
                except BaseException:
                    self._drop(in_flight)
                    raise
                pending._done = True
                in_flight.popleft()

    def _drop(self, in_flight: collections.deque[Pending]) -> None:
        """Drop the connection; the requests in flight fail (their replies are lost)."""
        self._unsent.clear()
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
