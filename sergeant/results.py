"""Task results on demand: what ``work`` returned (or how it failed), kept for a while.

With ``WorkerConfig.result_ttl_seconds > 0``, the worker stores each task's final
outcome under its id, for that many seconds, and ``Worker.get_result(task_id)``
reads it back, waiting if it is not there yet (on Redis a blocking BLPOP, elsewhere
a poll backing off to 0.2 s; see ``Connector.wait_for_key``).

Stored outcomes: a success (the return value), a failure or a timeout not turned
into a retry or requeue (the exception's type and message), and max retries.
Retries and requeues store nothing: the task runs again. The record is a small
dict encoded with the worker's serializer (``Encoder.serializer``), so producer and
worker must share that setting, as they already do for tasks::

    {"ok": True, "value": <returned value>}
    {"ok": False, "type": "ValueError", "message": "..."}

A return value the serializer cannot encode is stored as a failure of type
``EncodingError``, so a waiting caller gets an answer instead of a timeout.
"""

from __future__ import annotations

import logging
import typing

from sergeant.connector import Connector
from sergeant.encoder.serializer import Serializer
from sergeant.errors import ResultTimeout, TaskFailed
from sergeant.executor import Outcome

__all__ = ["ResultStore", "result_key"]

logger = logging.getLogger(__name__)

_KEPT = frozenset({Outcome.SUCCESS, Outcome.FAILURE, Outcome.TIMEOUT, Outcome.MAX_RETRIES})


def result_key(task_id: str) -> str:
    """The key under which the result of ``task_id`` is stored."""
    return f"sergeant-result:{task_id}"


def _failure(value: object) -> dict[str, typing.Any]:
    if isinstance(value, BaseException):
        kind = type(value)
        name = kind.__qualname__ if kind.__module__ == "builtins" else kind.__name__
        return {"ok": False, "type": name, "message": str(value)}
    return {"ok": False, "type": "WorkerMaxRetries", "message": "max retries reached"}


class ResultStore:
    """Stores and fetches task results on one connector.

    Args:
        connector: the broker's connector.
        serializer: the worker's serializer.
        ttl_seconds: how long a stored result is kept; 0 stores nothing.
    """

    def __init__(self, connector: Connector, serializer: Serializer, ttl_seconds: float) -> None:
        self.connector = connector
        self.serializer = serializer
        self.ttl_seconds = ttl_seconds

    def store(self, task_id: str, outcome: Outcome, value: object) -> None:
        """Keep the final outcome of a task (nothing for retries, requeues, interrupts).

        Raises:
            ConnectorError: the broker did not take it.
        """
        if self.ttl_seconds <= 0 or outcome not in _KEPT:
            return
        record = {"ok": True, "value": value} if outcome is Outcome.SUCCESS else _failure(value)
        try:
            data = self.serializer.dumps(record)
        except Exception as exc:
            message = f"the return value cannot be encoded with {self.serializer.name!r}: {exc}"
            data = self.serializer.dumps({"ok": False, "type": "EncodingError", "message": message})
        self.connector.key_set_notify(result_key(task_id), data, self.ttl_seconds)

    def fetch(self, task_id: str, timeout: float | None) -> typing.Any:
        """The value ``work`` returned for ``task_id``, waiting up to ``timeout`` seconds.

        Args:
            task_id: an id returned by ``push_task``/``push_tasks``.
            timeout: seconds to wait at most; None waits until it comes, 0 looks once.

        Raises:
            TaskFailed: the task failed, timed out or ran out of retries.
            ResultTimeout: no result within ``timeout``.
        """
        data = self.connector.wait_for_key(result_key(task_id), timeout)
        if data is None:
            raise ResultTimeout(
                f"no result for task {task_id} within {timeout}s: it has not finished yet, "
                "or the worker that ran it keeps no results (WorkerConfig.result_ttl_seconds "
                "is 0), or its result expired"
            )
        record = self.serializer.loads(data)
        if record.get("ok"):
            return record.get("value")
        raise TaskFailed(task_id, str(record.get("type")), str(record.get("message")))
