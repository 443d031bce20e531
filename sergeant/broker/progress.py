"""Task progress: the last ``Worker.set_progress`` value of a task, kept for a while.

The record is stored under :func:`progress_key` with the connector's key operations,
as compact JSON (operators read it; it holds no user object, so no serializer)::

    {"fraction": 0.42, "message": "page 42 of 100" | null, "updated_at": <Unix s>}

It is kept ``WorkerConfig.result_ttl_seconds`` when that is above 0 (as long as the
task's result), else :data:`DEFAULT_TTL_SECONDS`.
"""

from __future__ import annotations

import orjson

from sergeant.connector import Connector
from sergeant.objects import Progress

__all__ = [
    "DEFAULT_TTL_SECONDS",
    "MESSAGE_MAX_CHARS",
    "ProgressKeeping",
    "progress_key",
    "progress_ttl",
]

#: Seconds a progress record is kept when results are not (a day: long enough to
#: look at a finished task, short enough not to pile up).
DEFAULT_TTL_SECONDS = 86_400.0
#: Longest message stored; longer ones are cut (a record is meant to stay small).
MESSAGE_MAX_CHARS = 1_000


def progress_key(task_id: str) -> str:
    """The key under which the progress of ``task_id`` is stored."""
    return f"sergeant-progress:{task_id}"


def progress_ttl(result_ttl_seconds: float) -> float:
    """How long a progress record is kept, given the worker's ``result_ttl_seconds``."""
    return result_ttl_seconds if result_ttl_seconds > 0 else DEFAULT_TTL_SECONDS


class ProgressKeeping:
    """Stores and reads task progress records over ``connector`` (a mixin of ``Broker``)."""

    connector: Connector

    def store_progress(self, task_id: str, progress: Progress, ttl_seconds: float) -> None:
        """Keep ``progress`` as the last progress of ``task_id`` for ``ttl_seconds``.

        Raises:
            ConnectorError: the broker did not take it.
        """
        message = progress.message
        record = {
            "fraction": float(progress.fraction),
            "message": None if message is None else message[:MESSAGE_MAX_CHARS],
            "updated_at": progress.updated_at,
        }
        self.connector.key_set(progress_key(task_id), orjson.dumps(record), ttl_seconds)

    def fetch_progress(self, task_id: str) -> Progress | None:
        """The last progress stored for ``task_id``, or None (none, expired, or unreadable)."""
        data = self.connector.key_get(progress_key(task_id))
        if data is None:
            return None
        try:
            record = orjson.loads(data)
            message = record.get("message")
            return Progress(
                float(record["fraction"]),
                None if message is None else str(message),
                float(record["updated_at"]),
            )
        except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError):
            return None  # not a record of ours: as if none were stored
