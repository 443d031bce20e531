"""Cancelling tasks through the broker (``Worker.cancel``).

A task still waiting (ready or delayed) is removed from its queue
(``Connector.waiting`` then ``remove_waiting``: each removal is atomic, so a task a
worker leased meanwhile is not removed) and never runs. Otherwise, unless it has
ended, a *cancel request* is recorded in the queue's request list
(``sergeant-cancels:<queue>``, JSON, each entry kept :data:`CANCEL_TTL_SECONDS`):
every worker of the queue reads it at each heartbeat, raises ``WorkerCancelled`` in
the task if it runs it, and does not start it if it comes later (a redelivery, a
workflow step pushed afterwards). ``get_result`` then raises ``TaskCancelled``.
"""

from __future__ import annotations

import time
import typing

import orjson

from sergeant.broker.results import result_key
from sergeant.connector import Connector, Waiting
from sergeant.encoder import Encoder
from sergeant.errors import DecodeError, LockError

__all__ = ["CANCEL_TTL_SECONDS", "Cancelling", "cancels_key"]

#: Seconds a cancel request (and a cancelled task's result) is kept.
CANCEL_TTL_SECONDS = 86_400.0
#: Seconds a cancel waits for another cancel of the same queue to finish.
LOCK_TIMEOUT_SECONDS = 10.0
#: What ``get_result`` raises for a cancelled task: ``TaskFailed.error_type``.
CANCELLED = "TaskCancelled"


def cancels_key(queue: str) -> str:
    """The key holding the cancel requests of ``queue``."""
    return f"sergeant-cancels:{queue}"


class Cancelling:
    """Cancel requests over ``connector`` (a mixin of ``Broker``)."""

    connector: Connector
    encoder: Encoder

    if typing.TYPE_CHECKING:
        from sergeant.objects import Task

        def fail_flow(self, task: Task, error_type: str, message: str) -> None: ...

    def cancel_task(self, queue: str, task_id: str) -> bool:
        """Remove ``task_id`` from ``queue`` if it waits there, else ask its worker to
        stop it; False when it has ended already (its result is stored)."""
        removed = self.remove_waiting_tasks(queue, [task_id])
        if removed:
            self.record_cancelled(task_id, removed[0].payload, "cancelled before it ran")
            return True
        if self.connector.key_get(result_key(task_id)) is not None:
            return False
        self.request_cancel(queue, [task_id])
        return True

    def remove_waiting_tasks(self, queue: str, task_ids: typing.Collection[str]) -> list[Waiting]:
        """Remove the tasks of ``task_ids`` still waiting in ``queue`` (ids read from the
        payloads, never decoded); the ones found, or [] when none was removed."""
        wanted = set(task_ids)
        found = [
            w for w in self.connector.waiting(queue) if self.encoder.peek_id(w.payload) in wanted
        ]
        if found and self.connector.remove_waiting(queue, found):
            return found
        return []

    def request_cancel(self, queue: str, task_ids: typing.Sequence[str]) -> None:
        """Add ``task_ids`` to the queue's cancel requests (read by its workers)."""
        lock = self.connector.lock(f"sergeant-cancels-lock:{queue}")
        if not lock.acquire(timeout=LOCK_TIMEOUT_SECONDS, ttl=int(LOCK_TIMEOUT_SECONDS)):
            raise LockError(f"could not record a cancel on queue {queue!r}: its lock stayed busy")
        try:
            now = time.time()
            requests = {
                task_id: expires
                for task_id, expires in self._requests(queue).items()
                if expires > now
            }
            requests.update(dict.fromkeys(task_ids, now + CANCEL_TTL_SECONDS))
            data = orjson.dumps(requests)
            self.connector.key_set(cancels_key(queue), data, CANCEL_TTL_SECONDS)
        finally:
            lock.release()

    def cancel_requests(self, queue: str) -> frozenset[str]:
        """The ids of the tasks of ``queue`` asked to stop (not expired)."""
        now = time.time()
        return frozenset(t for t, expires in self._requests(queue).items() if expires > now)

    def _requests(self, queue: str) -> dict[str, float]:
        data = self.connector.key_get(cancels_key(queue))
        return {} if data is None else typing.cast(dict[str, float], orjson.loads(data))

    def record_cancelled(self, task_id: str, payload: bytes | None, message: str) -> None:
        """Store that ``task_id`` was cancelled (``get_result`` raises TaskCancelled);
        a workflow step fails its workflow."""
        record = {"ok": False, "type": CANCELLED, "message": message}
        data = self.encoder.serializer.dumps(record)
        self.connector.key_set_notify(result_key(task_id), data, CANCEL_TTL_SECONDS)
        if payload is None:
            return
        try:
            task = self.encoder.decode(payload)
        except DecodeError:
            return
        if task._flow is not None:
            self.fail_flow(task, CANCELLED, message)
