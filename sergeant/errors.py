"""Errors raised by Sergeant (control flow excepted: see ``sergeant.worker``).

The tree::

    SergeantError
     ├── ConfigError            a configuration value is wrong (names the field)
     ├── ConnectorError         the broker failed or could not be reached
     │    ├── BrokerUnavailable  the broker could not be reached (at start or later)
     │    ├── BrokerFileReplaced the SQLite file was deleted or replaced under its connection
     │    ├── BrokerFull         the broker is out of memory or disk: it refuses new tasks
     │    └── ConnectionLost     an established connection broke mid-operation
     ├── EncodingError          a task could not be encoded
     │    └── DecodeError       bytes from the broker could not be decoded
     ├── LockError              a lock operation was misused
     ├── ResultTimeout          a result did not arrive in time
     ├── TaskFailed             the task whose result was asked for failed
     └── WorkerImportError      a worker module or class could not be imported

Driver exceptions (redis-py, pymongo, sqlite3) are wrapped at the connector boundary
with ``raise ... from exc`` so callers only ever catch ``SergeantError`` subclasses.
"""

from __future__ import annotations

__all__ = [
    "BrokerFileReplaced",
    "BrokerFull",
    "BrokerUnavailable",
    "ConfigError",
    "ConnectionLost",
    "ConnectorError",
    "DecodeError",
    "EncodingError",
    "LockError",
    "ResultTimeout",
    "SergeantError",
    "TaskCancelled",
    "TaskFailed",
    "WorkerImportError",
]


class SergeantError(Exception):
    """Something went wrong inside Sergeant."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


class ConfigError(SergeantError, ValueError):
    """A configuration value is invalid; the message names the field and what is accepted."""


class ConnectorError(SergeantError):
    """The broker failed to carry out an operation."""


class BrokerUnavailable(ConnectorError):
    """The broker could not be reached; check its address and that it is running."""


class BrokerFileReplaced(ConnectorError):
    """The SQLite broker file was deleted, moved or replaced while a connection had it open.

    The connection still reads and writes the old file, which nobody else sees: its
    connector refuses every later operation (it is not retried). A worker exits, so
    that its supervisor starts a fresh one on the file now at that path.
    """


class BrokerFull(ConnectorError):
    """The broker is out of memory or disk and refused to store new data.

    Nothing of the refused operation was stored. A full broker still hands out,
    acknowledges and dead-letters the tasks it holds, so running workers drain it,
    which frees the room; pushes are refused until then. Give the broker more room
    (Redis ``maxmemory``, disk space) or more workers.
    """


class ConnectionLost(ConnectorError):
    """The connection to the broker broke during an operation; it may be retried.

    A push that raised it may or may not have been stored. To retry it safely, push
    with a ``unique_key`` (``Worker.push_task(..., unique_key=...)``): the retry
    stores the task only if the first attempt did not, and returns the stored
    task's id either way (while that task is queued or running).
    """


class EncodingError(SergeantError):
    """A task could not be encoded with the configured serializer and compressor."""


class DecodeError(EncodingError):
    """Bytes from the broker could not be decoded.

    Attributes:
        codec: the serializer or compressor that failed, such as ``'pickle'`` or ``'zlib'``.
        data: the raw bytes that failed to decode, kept so they can be dead-lettered.
    """

    def __init__(self, codec: str, data: bytes, reason: str) -> None:
        self.codec = codec
        self.data = data
        self.reason = reason
        super().__init__(f"undecodable payload: {codec}: {reason}")


class LockError(SergeantError):
    """A lock was used in a way its owner token does not allow."""


class ResultTimeout(SergeantError, TimeoutError):
    """The result of a task was not stored before the timeout ran out."""


class TaskFailed(SergeantError):
    """The task whose result was asked for ended in failure (``work`` raised or timed
    out, or the task was dead-lettered).

    Attributes:
        task_id: the task's id.
        error_type: the qualified name of the exception raised in the worker, such
            as ``'ValueError'``, or ``'WorkerTimedout'`` for a timeout;
            ``'DeadLetter'`` for a dead-lettered task.
        error_message: that exception's message; for a dead letter, its delivery
            count, reason and last error.
        reason: the dead letter's reason (``'killed after timeout'``, ``'worker
            died'``, ``'max retries'``, a decode error, ...), or None when the task
            was not dead-lettered.
    """

    def __init__(
        self, task_id: str, error_type: str, error_message: str, reason: str | None = None
    ) -> None:
        self.task_id = task_id
        self.error_type = error_type
        self.error_message = error_message
        self.reason = reason
        super().__init__(f"task {task_id} failed: {error_type}: {error_message}")


class TaskCancelled(TaskFailed):
    """The task (or workflow) whose result was asked for was cancelled with
    ``Worker.cancel``: removed before it ran, or stopped while it ran."""


class WorkerImportError(SergeantError, ImportError):
    """The worker module or class could not be imported."""
