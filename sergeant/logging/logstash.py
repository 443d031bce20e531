"""Logstash handlers (0.27): log records as JSON lines over TCP.

Neither handler ever blocks the worker for long or raises when logstash is down:
a send failure drops the connection (records of that attempt are lost, counted in
``dropped``) and the next record reconnects, each attempt bounded by ``timeout``.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import socket
import threading
import time
import typing

import orjson

__all__ = ["BufferedLogstashHandler", "LogstashHandler"]

_SKIPPED_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)


def record_to_json(record: logging.LogRecord) -> bytes:
    """One JSON line for a record: timestamp, level, logger, message, extras."""
    document: dict[str, typing.Any] = {
        "@timestamp": datetime.datetime.fromtimestamp(
            record.created, datetime.timezone.utc
        ).isoformat(),
        "level": record.levelname,
        "logger": record.name,
        "message": record.getMessage(),
        "process": record.process,
        "thread": record.threadName,
    }
    if record.exc_info:
        document["exception"] = logging.Formatter().formatException(record.exc_info)
    for key, value in vars(record).items():
        if key not in _SKIPPED_ATTRIBUTES:
            document[key] = value
    return orjson.dumps(document, default=repr, option=orjson.OPT_APPEND_NEWLINE)


class LogstashHandler(logging.Handler):
    """Sends each record at once as a JSON line to ``host:port`` over TCP."""

    def __init__(self, host: str, port: int, timeout: float = 2.0) -> None:
        super().__init__()
        self.address = (host, port)
        self.timeout = timeout
        self.dropped = 0
        self._socket: socket.socket | None = None
        self._send_lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
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
            except OSError:
                self.dropped += len(lines)
                self._disconnect()

    def _disconnect(self) -> None:
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.close()
            self._socket = None

    def close(self) -> None:
        with self._send_lock:
            self._disconnect()
        super().close()


class BufferedLogstashHandler(LogstashHandler):
    """Buffers records; sends ``chunk_size`` at a time, or after ``max_store_time`` seconds."""

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
        self._closed = threading.Event()
        self._flusher = threading.Thread(
            target=self._flush_periodically, daemon=True, name="logstash-flusher"
        )
        self._flusher.start()

    def emit(self, record: logging.LogRecord) -> None:
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
        while not self._closed.wait(min(1.0, self.max_store_time)):
            with self._buffer_lock:
                due = bool(self._buffer) and time.monotonic() - self._oldest >= self.max_store_time
            if due:
                self.flush()

    def close(self) -> None:
        self._closed.set()
        self.flush()
        super().close()
