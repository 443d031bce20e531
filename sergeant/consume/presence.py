"""A worker's presence in the broker: what its heartbeat says, and how to read it back.

The consumer's heartbeat thread publishes :meth:`Presence.info` with
``Connector.register_worker`` every :data:`HEARTBEAT_SECONDS` (or more often, with
short leases), alive for :data:`HEARTBEAT_TTL_FACTOR` intervals: a worker that dies
vanishes from ``sergeant stats`` within that time. The info is JSON (orjson)::

    {"id": "host:pid:abcd", "host": ..., "pid": ..., "queue": ..., "started": <Unix s>,
     "heartbeat_at": <Unix s>, "tasks_done": n, "done_last_minute": m, "running": k,
     "current_task_id": "..." | null, "current_task_since": <Unix s> | null,
     "current_task_progress": {"fraction": f, "message": "..." | null} | null}

plus, with a ``rate_limit``, ``"rate_limit": {"tasks": n, "per_seconds": s}`` and
``"throttled": true | false`` (see ``consume.throttle``): what :attr:`Presence.extra`
holds is merged in.

``current_task_progress`` is the current task's latest ``Worker.set_progress`` value,
read from memory (its message cut to :data:`PROGRESS_MESSAGE_MAX_CHARS`, to keep the
record small); null until the task reports one.

``done_last_minute`` counts tasks settled in the last 60 s, so summing it over live
workers gives a queue's rate without a write per task. Nothing is counted per task:
each heartbeat samples ``tasks_done``, and the count is the growth since a minute
ago, interpolated between the two samples around then (exact until the worker is a
minute old). It lags by up to one heartbeat interval, and a worker that exited in
the last minute no longer counts.
"""

from __future__ import annotations

import collections
import os
import socket
import time
import typing
import uuid

import orjson

__all__ = [
    "HEARTBEAT_SECONDS",
    "HEARTBEAT_TTL_FACTOR",
    "PROGRESS_MESSAGE_MAX_CHARS",
    "Presence",
    "ProgressLookup",
    "decode",
]

#: Longest pause, in seconds, between two heartbeats of a worker.
HEARTBEAT_SECONDS = 5.0
#: A heartbeat stays alive this many intervals, so one late beat is not a death.
HEARTBEAT_TTL_FACTOR = 3.0
#: Longest progress message a heartbeat carries (the full one is in the progress record).
PROGRESS_MESSAGE_MAX_CHARS = 200

#: The latest ``(fraction, message)`` of a running task by its id, or None.
ProgressLookup = typing.Callable[[str], "tuple[float, str | None] | None"]

_WINDOW_SECONDS = 60


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
        # (monotonic seconds, tasks_done) per heartbeat, the last minute's and one older.
        self._samples: collections.deque[tuple[float, int]] = collections.deque()
        self._samples.append((time.monotonic(), 0))
        #: More fields for the heartbeat (the rate limit's state), merged in as they are.
        self.extra: dict[str, typing.Any] = {}

    def info(
        self,
        tasks_done: int,
        running: typing.Iterable[tuple[str, float]],
        progress: ProgressLookup | None = None,
    ) -> bytes:
        """The heartbeat's JSON (see the module docstring); samples ``tasks_done``.

        Args:
            tasks_done: tasks settled since the worker started.
            running: the tasks running now: ``(task id, Unix seconds it started)``.
            progress: the latest progress of a running task, by its id.
        """
        running = sorted(running, key=lambda item: item[1])
        current = running[0] if running else (None, None)
        latest = progress(current[0]) if progress is not None and current[0] is not None else None
        document: dict[str, typing.Any] = {
            **self._fixed,
            "started": self.started,
            "heartbeat_at": time.time(),
            "tasks_done": tasks_done,
            "done_last_minute": self._done_last_minute(time.monotonic(), tasks_done),
            "running": len(running),
            "current_task_id": current[0],
            "current_task_since": current[1],
            "current_task_progress": None
            if latest is None
            else {"fraction": latest[0], "message": _short(latest[1])},
            **self.extra,
        }
        return orjson.dumps(document)

    def _done_last_minute(self, now: float, tasks_done: int) -> int:
        samples, since = self._samples, now - _WINDOW_SECONDS
        samples.append((now, tasks_done))
        while samples[1][0] <= since:  # keep one sample at or before the window's start
            samples.popleft()
        (old_at, old_done), (new_at, new_done) = samples[0], samples[1]
        if old_at >= since:
            return tasks_done - old_done  # the worker is younger than a minute
        # Tasks done at the window's start, at a steady pace between the two samples.
        done_then = old_done + (new_done - old_done) * (since - old_at) / (new_at - old_at)
        return tasks_done - round(done_then)


def _short(message: str | None) -> str | None:
    return message if message is None else message[:PROGRESS_MESSAGE_MAX_CHARS]


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
