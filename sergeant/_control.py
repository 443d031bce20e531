"""Control-flow exceptions of the worker (re-exported by ``sergeant.worker``, as in 0.27).

They derive from ``BaseException`` on purpose: a task's own ``except Exception:``
must not swallow a timeout, a retry or a stop request.
"""

from __future__ import annotations

__all__ = [
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
