"""How a task's run can end: the worker's control-flow exceptions and the ``Outcome``.

Every layer above the broker speaks these (the executor raises and routes them, the
consumer settles leases by ``Outcome``, the worker and results record it), so they
live in one module below all of them. The exceptions are re-exported by
``sergeant.worker`` as in 0.27; ``Outcome`` by ``sergeant.executor``.

The exceptions derive from ``BaseException`` on purpose: a task's own
``except Exception:`` must not swallow a timeout, a retry or a stop request.
"""

from __future__ import annotations

import enum

__all__ = [
    "Outcome",
    "WorkerCancelled",
    "WorkerException",
    "WorkerInterrupt",
    "WorkerMaxRetries",
    "WorkerRequeue",
    "WorkerRespawn",
    "WorkerRetry",
    "WorkerStop",
    "WorkerTimedout",
]


class WorkerException(BaseException):
    """Base of the worker's control-flow exceptions."""


class WorkerTimedout(WorkerException):
    """Raised inside a task that ran past ``Timeouts.timeout``."""


class WorkerCancelled(WorkerException):
    """Raised inside a task that ``Worker.cancel`` cancelled while it ran (or before it
    started); routed to ``on_cancel``."""


class WorkerRetry(WorkerException):
    """Raised by ``Worker.retry`` after the task was pushed again."""


class WorkerMaxRetries(WorkerException):
    """Raised by ``Worker.retry`` when the task used up ``max_retries``."""


class WorkerRequeue(WorkerException):
    """Raised by ``Worker.requeue`` after the task was pushed back unchanged."""


class WorkerInterrupt(WorkerException):
    """Ends the work loop."""


class WorkerRespawn(WorkerInterrupt):
    """Ends this worker process so the supervisor starts a fresh one."""


class WorkerStop(WorkerInterrupt):
    """Stops this worker and, under a supervisor, the whole fleet."""


class Outcome(enum.Enum):
    """How a task ended; decides how its lease is settled."""

    SUCCESS = "success"
    FAILURE = "failure"
    TIMEOUT = "timeout"
    RETRY = "retry"
    MAX_RETRIES = "max_retries"
    REQUEUE = "requeue"
    INTERRUPTED = "interrupted"
    #: ``work`` raised a ``BaseException`` that ends the worker (``SystemExit``,
    #: ``KeyboardInterrupt``, ...): the delivery is charged to the task.
    ABORTED = "aborted"
    #: ``Worker.cancel`` stopped it (``WorkerCancelled``): acknowledged, not retried.
    CANCELLED = "cancelled"
