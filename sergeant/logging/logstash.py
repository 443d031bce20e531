"""Logstash handlers (0.27): log records as JSON lines over TCP, in 0.27's shape.

Each record is one JSON object (see ``record_to_json``) and a newline, so a
logstash ``tcp`` input with ``codec => json_lines`` reads both handlers.

Neither handler ever blocks the worker for long or raises, whatever the socket
raises: a failed send drops the connection (the records of that attempt are
lost, counted in ``dropped``) and the next record reconnects, each attempt
bounded by ``timeout``. As in 0.27 a failure prints
``sending log entry to the logstash server has failed: ...`` (to stdout, as 0.27), but
once per outage, not per record: it is printed again only after a success.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import logging
import socket
import sys
import threading
import time
import traceback
import typing

import orjson

__all__ = ["BufferedLogstashHandler", "LogstashHandler"]

_SKIPPED_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)
FAILED_MESSAGE = "sending log entry to the logstash server has failed: {}"


@functools.cache
def _host() -> tuple[str, str | None]:
    """This machine's name and address, looked up once (as 0.27 did per handler)."""
    hostname = socket.gethostname()
    try:
        return hostname, socket.gethostbyname(hostname)
    except Exception:  # a name the resolver does not know must not stop logging
        return hostname, None


def record_to_json(record: logging.LogRecord) -> bytes:
    """One JSON line for a record, in 0.27's shape.

    ``@timestamp`` (ISO 8601, UTC), ``message``, ``level``, ``name`` (the
    logger), ``emitter`` (``hostname``, ``ipaddress``, ``pathname``,
    ``function``, ``line``, and the new ``process`` and ``thread``), ``extra``
    (every ``extra=`` field, such as ``event``; values JSON cannot hold are sent
    as their ``repr``), and ``exception`` (``type``, ``message``,
    ``stacktrace``) when the record has one.
    """
    hostname, ipaddress = _host()
    document: dict[str, typing.Any] = {
        "@timestamp": datetime.datetime.fromtimestamp(
            record.created, datetime.timezone.utc
        ).isoformat(),
        "message": record.getMessage(),
        "level": record.levelname,
        "name": record.name,
        "emitter": {
            "hostname": hostname,
            "ipaddress": ipaddress,
            "pathname": record.pathname,
            "function": record.funcName,
            "line": record.lineno,
            "process": record.process,
            "thread": record.threadName,
        },
        "extra": {k: v for k, v in vars(record).items() if k not in _SKIPPED_ATTRIBUTES},
    }
    if record.exc_info and record.exc_info[1] is not None:
        kind, value, tb = record.exc_info
        document["exception"] = {
            "type": type(value).__name__,
            "message": str(value),
            "stacktrace": "".join(traceback.format_exception(kind, value, tb)),
        }
    options = orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS
    return orjson.dumps(document, default=repr, option=options)


class LogstashHandler(logging.Handler):
    """Sends each record at once as a JSON line to ``host:port`` over TCP.

    Args:
        host: the logstash server.
        port: its TCP input's port.
        timeout: seconds each connect or send may take at most.
    """

    def __init__(self, host: str, port: int, timeout: float = 2.0) -> None:
        super().__init__()
        self.address = (host, port)
        self.timeout = timeout
        self.dropped = 0
        self._socket: socket.socket | None = None
        self._send_lock = threading.Lock()
        self._failing = False

    def emit(self, record: logging.LogRecord) -> None:
        """Encode and send one record (never raises)."""
        try:
            line = record_to_json(record)
        except Exception:
            self.handleError(record)
            return
        self.send([line])

    def send(self, lines: list[bytes]) -> None:
        """Send lines in one write; on failure drop them and the connection."""
        with self._send_lock:
            try:
                if self._socket is None:
                    self._socket = socket.create_connection(self.address, timeout=self.timeout)
                self._socket.sendall(b"".join(lines))
            except Exception as exc:  # not only OSError: a bad host raises UnicodeError
                self.dropped += len(lines)
                self._disconnect()
                self._report(exc)
            else:
                self._failing = False

    def _report(self, exc: Exception) -> None:
        """Print 0.27's failure line, once until the next success."""
        if self._failing:
            return
        self._failing = True
        with contextlib.suppress(Exception):  # stdout may be closed or None
            print(FAILED_MESSAGE.format(exc), file=sys.stdout, flush=True)

    def _disconnect(self) -> None:
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.close()
            self._socket = None

    def close(self) -> None:
        """Close the connection."""
        with self._send_lock:
            self._disconnect()
        super().close()


class BufferedLogstashHandler(LogstashHandler):
    """Buffers records; sends ``chunk_size`` at a time, or after ``max_store_time`` seconds.

    Args:
        host: the logstash server.
        port: its TCP input's port.
        timeout: seconds each connect or send may take at most.
        chunk_size: records sent together.
        max_store_time: seconds a record waits at most before it is sent.
    """

    def __init__(
        self,
        host: str,
        port: int,
        timeout: float = 2.0,
        chunk_size: int = 100,
        max_store_time: float = 60.0,
    ) -> None:
        super().__init__(host, port, timeout)
        self.chunk_size = chunk_size
        self.max_store_time = max_store_time
        self._buffer: list[bytes] = []
        self._buffer_lock = threading.Lock()
        self._oldest = time.monotonic()
        # Not ``_closed``: logging.Handler.close() sets that attribute to True.
        self._stopping = threading.Event()
        self._flusher = threading.Thread(
            target=self._flush_periodically, daemon=True, name="logstash-flusher"
        )
        self._flusher.start()

    def emit(self, record: logging.LogRecord) -> None:
        """Encode and buffer one record; send the buffer once it is full (never raises)."""
        try:
            line = record_to_json(record)
        except Exception:
            self.handleError(record)
            return
        with self._buffer_lock:
            if not self._buffer:
                self._oldest = time.monotonic()
            self._buffer.append(line)
            full = len(self._buffer) >= self.chunk_size
        if full:
            self.flush()

    def flush(self) -> None:
        """Send everything buffered now."""
        with self._buffer_lock:
            lines, self._buffer = self._buffer, []
        if lines:
            self.send(lines)

    def _flush_periodically(self) -> None:
        while not self._stopping.wait(min(1.0, self.max_store_time)):
            with self._buffer_lock:
                due = bool(self._buffer) and time.monotonic() - self._oldest >= self.max_store_time
            if due:
                self.flush()

    def close(self) -> None:
        """Send what is buffered, stop the flusher and close the connection."""
        self._stopping.set()
        self.flush()
        super().close()
