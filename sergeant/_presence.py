"""A worker's presence in the broker: what its heartbeat says, and how to read it back.

The consumer's heartbeat thread publishes :meth:`Presence.info` with
``Connector.register_worker`` every :data:`HEARTBEAT_SECONDS` (or more often, with
short leases), alive for :data:`HEARTBEAT_TTL_FACTOR` intervals: a worker that dies
vanishes from ``sergeant stats`` within that time. The info is JSON (orjson)::

    {"id": "host:pid:abcd", "host": ..., "pid": ..., "queue": ..., "started": <Unix s>,
     "heartbeat_at": <Unix s>, "tasks_done": n, "done_last_minute": m, "running": k,
     "current_task_id": "..." | null, "current_task_since": <Unix s> | null}

``done_last_minute`` counts tasks settled in the last 60 s (one-second buckets), so
summing it over live workers gives a queue's rate without a write per task. It lags
by up to one heartbeat interval, and a worker that exited in the last minute no
longer counts.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import typing
import uuid

import orjson

__all__ = ["HEARTBEAT_SECONDS", "HEARTBEAT_TTL_FACTOR", "MinuteCounter", "Presence", "decode"]

#: Longest pause, in seconds, between two heartbeats of a worker.
HEARTBEAT_SECONDS = 5.0
#: A heartbeat stays alive this many intervals, so one late beat is not a death.
HEARTBEAT_TTL_FACTOR = 3.0

_WINDOW_SECONDS = 60


class MinuteCounter:
    """Events over the last 60 seconds, in one-second buckets (O(1) per event)."""

    def __init__(self) -> None:
        self._counts = [0] * _WINDOW_SECONDS
        self._seconds = [-1] * _WINDOW_SECONDS

    def add(self, count: int = 1) -> None:
        """Count ``count`` events now."""
        second = int(time.monotonic())
        slot = second % _WINDOW_SECONDS
        if self._seconds[slot] != second:
            self._seconds[slot], self._counts[slot] = second, 0
        self._counts[slot] += count

    def total(self) -> int:
        """Events counted in the last 60 seconds."""
        now = int(time.monotonic())
        return sum(
            count
            for count, second in zip(self._counts, self._seconds, strict=True)
            if now - second < _WINDOW_SECONDS
        )


class Presence:
    """The live state of one worker process that its heartbeat publishes.

    Args:
        queue: the queue the worker consumes.
    """

    def __init__(self, queue: str) -> None:
        host, pid = socket.gethostname(), os.getpid()
        # host:pid names the process; the suffix keeps two workers of one process apart.
        self.worker_id = f"{host}:{pid}:{uuid.uuid4().hex[:6]}"
        self.queue = queue
        self._fixed = {"id": self.worker_id, "host": host, "pid": pid, "queue": queue}
        self.started = time.time()
        self.done = MinuteCounter()
        self._running: dict[int, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def task_started(self, task_key: int, task_id: str) -> None:
        """A task began running; ``task_key`` names it until :meth:`task_ended`."""
        with self._lock:
            self._running[task_key] = (task_id, time.time())

    def task_ended(self, task_key: int) -> None:
        """A task was settled."""
        with self._lock:
            self._running.pop(task_key, None)
            self.done.add()

    def info(self, tasks_done: int) -> bytes:
        """The heartbeat's JSON (see the module docstring)."""
        with self._lock:
            running = sorted(self._running.values(), key=lambda item: item[1])
            done_last_minute = self.done.total()
        current = running[0] if running else (None, None)
        document: dict[str, typing.Any] = {
            **self._fixed,
            "started": self.started,
            "heartbeat_at": time.time(),
            "tasks_done": tasks_done,
            "done_last_minute": done_last_minute,
            "running": len(running),
            "current_task_id": current[0],
            "current_task_since": current[1],
        }
        return orjson.dumps(document)


def decode(infos: typing.Iterable[bytes], queue: str | None = None) -> list[dict[str, typing.Any]]:
    """The heartbeats that parse as JSON objects, of ``queue`` only when given, by id."""
    found = []
    for raw in infos:
        try:
            document = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue  # not ours, or from an incompatible version: skip, do not crash stats
        if isinstance(document, dict) and (queue is None or document.get("queue") == queue):
            found.append(document)
    return sorted(found, key=lambda document: str(document.get("id")))
