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

A task that was dead-lettered (killed after its timeout, its worker died, it ended
its worker, it could not be decoded, it ran out of retries, ...) never stores a
result: no worker finished it. Its dead letter is its failure. Whatever moved it
there (a worker, the supervisor settling a dead child, another worker reclaiming an
expired lease, the broker's own script), the dead letter is written in that atomic
step, so ``get_result`` consults the dead letters of the task's queue while it
waits and raises ``TaskFailed`` with the dead letter's reason as soon as it is
there. A dead letter requeued (``sergeant dead requeue``) leaves them; if it then
succeeds, its success is the result.
"""

from __future__ import annotations

import logging
import time
import typing

from sergeant.connector import Connector, DeadLetter
from sergeant.control import Outcome
from sergeant.encoder import Encoder
from sergeant.errors import ResultTimeout, TaskCancelled, TaskFailed

__all__ = ["DEAD_LETTER", "DeadLookup", "ResultStore", "result_key"]

logger = logging.getLogger("sergeant.results")  # the name it had before the move

#: ``TaskFailed.error_type`` of a task found in the dead letters.
DEAD_LETTER = "DeadLetter"
#: The most dead letters of a queue read when looking for one task.
DEAD_SCAN_LIMIT = 100_000
#: First and longest pause, in seconds, between two looks while waiting.
WAIT_SLICE_FIRST_SECONDS = 0.05
WAIT_SLICE_MAX_SECONDS = 0.5
#: Seconds after which the dead letters are read again although their count is unchanged
#: (a requeue and a new dead letter in between leave the count as it was).
RESCAN_SECONDS = 5.0

_KEPT = frozenset(
    {Outcome.SUCCESS, Outcome.FAILURE, Outcome.TIMEOUT, Outcome.MAX_RETRIES, Outcome.CANCELLED}
)

#: Failure types that mean the task was cancelled (``get_result`` raises TaskCancelled).
_CANCELLED = frozenset({"TaskCancelled", "WorkerCancelled"})


def result_key(task_id: str) -> str:
    """The key under which the result of ``task_id`` is stored."""
    return f"sergeant-result:{task_id}"


def _failure(value: object) -> dict[str, typing.Any]:
    if isinstance(value, BaseException):
        kind = type(value)
        name = kind.__qualname__ if kind.__module__ == "builtins" else kind.__name__
        return {"ok": False, "type": name, "message": str(value)}
    return {"ok": False, "type": "WorkerMaxRetries", "message": "max retries reached"}


class DeadLookup:
    """Finds one task among the dead letters of its queue, by its id.

    Each dead letter is looked at once (its id is read without decoding the task,
    see ``Encoder.peek_id``); the letters are read again only when their count
    changed, or every :data:`RESCAN_SECONDS`.

    Args:
        connector: the broker's connector.
        encoder: reads task ids from payloads.
        queue: the task's queue.
        task_id: the task looked for (or several: the steps of a workflow in ``queue``).
    """

    def __init__(
        self, connector: Connector, encoder: Encoder, queue: str, task_id: str | frozenset[str]
    ) -> None:
        self.connector = connector
        self.encoder = encoder
        self.queue = queue
        self.task_ids = frozenset([task_id]) if isinstance(task_id, str) else task_id
        #: The id of the task whose dead letter :meth:`find` returned.
        self.found: str | None = None
        self._seen: set[tuple[int, str]] = set()
        self._count = -1
        self._scanned_at = 0.0

    def find(self) -> DeadLetter | None:
        """The task's dead letter, if it is in the dead letters now."""
        count = self.connector.dead_count(self.queue)
        now = time.monotonic()
        if count == 0 or (count == self._count and now - self._scanned_at < RESCAN_SECONDS):
            self._count = count
            return None
        self._count, self._scanned_at = count, now
        for dead in self.connector.dead_letters(self.queue, DEAD_SCAN_LIMIT):
            name = (dead.node, dead.item_id)
            if name in self._seen:
                continue
            found = self.encoder.peek_id(dead.payload)
            if found in self.task_ids:
                self.found = found
                return dead
            self._seen.add(name)
        return None

    def find_all(self) -> set[str]:
        """The ids among ``task_ids`` whose dead letters are in the queue now (one scan)."""
        if self.connector.dead_count(self.queue) == 0:
            return set()
        found = set()
        for dead in self.connector.dead_letters(self.queue, DEAD_SCAN_LIMIT):
            task_id = self.encoder.peek_id(dead.payload)
            if task_id in self.task_ids:
                found.add(task_id)
        return found


def _dead_failure(
    task_id: str, dead: DeadLetter, found: str | None = None, queue: str = ""
) -> TaskFailed:
    detail = f": {dead.error}" if dead.error else ""
    message = f"dead-lettered after {dead.deliveries} deliveries: {dead.reason}{detail}"
    if found is not None and found != task_id:  # a step of workflow task_id
        message = f"step {found} of queue {queue!r} failed: {message}"
    return TaskFailed(task_id, DEAD_LETTER, message, reason=dead.reason)


class ResultStore:
    """Stores and fetches task results on one connector.

    Args:
        connector: the broker's connector.
        encoder: the worker's encoder (its serializer encodes the records).
        ttl_seconds: how long a stored result is kept; 0 stores nothing.
    """

    def __init__(self, connector: Connector, encoder: Encoder, ttl_seconds: float) -> None:
        self.connector = connector
        self.encoder = encoder
        self.serializer = encoder.serializer
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

    def fetch(
        self,
        task_id: str,
        timeout: float | None,
        queue: str,
        lookups: typing.Sequence[DeadLookup] | None = None,
    ) -> typing.Any:
        """The value ``work`` returned for ``task_id``, waiting up to ``timeout`` seconds.

        While it waits it also looks for the task in the dead letters of ``queue``.

        Args:
            task_id: an id returned by ``push_task``/``push_tasks``.
            timeout: seconds to wait at most; None waits until it comes, 0 looks once.
            queue: the queue the task was pushed to.
            lookups: where to look for dead letters instead of ``queue`` (a
                workflow's steps, by queue).

        Raises:
            TaskFailed: the task failed, timed out, ran out of retries or was
                dead-lettered.
            ResultTimeout: no result within ``timeout``.
        """
        key = result_key(task_id)
        looks = lookups or [DeadLookup(self.connector, self.encoder, queue, task_id)]
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = 0.0  # the first look does not wait
        while True:
            data = self.connector.wait_for_key(key, pause)
            if data is not None:
                return self._read(task_id, data)
            for dead in looks:
                letter = dead.find()
                if letter is not None:
                    raise _dead_failure(task_id, letter, dead.found, dead.queue)
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise ResultTimeout(
                    f"no result for task {task_id} within {timeout}s, and it is not among the "
                    f"dead letters of queue {queue!r}: it has not finished yet, or it went to "
                    "another queue (pass its task_name), or the worker that ran it keeps no "
                    "results (WorkerConfig.result_ttl_seconds is 0), or its result expired"
                )
            pause = (
                WAIT_SLICE_FIRST_SECONDS if pause == 0 else min(pause * 2, WAIT_SLICE_MAX_SECONDS)
            )
            if left is not None:
                pause = min(pause, left)

    def _read(self, task_id: str, data: bytes) -> typing.Any:
        record = self.serializer.loads(data)
        if record.get("ok"):
            return record.get("value")
        kind = str(record.get("type"))
        failure = TaskCancelled if kind in _CANCELLED else TaskFailed
        raise failure(task_id, kind, str(record.get("message")))
