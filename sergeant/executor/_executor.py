"""Running one task and routing its outcome to the hooks, as Sergeant 0.27 does.

An exception raised inside a hook is logged with its traceback and never ends the
worker; only the control-flow exceptions change the course: ``retry()``,
``requeue()`` and max retries from ``on_failure``/``on_timeout`` route to
``on_retry``/``on_requeue``/``on_max_retries``, and ``stop()``/``respawn()``
end the loop.
"""

from __future__ import annotations

import logging
import typing

from sergeant.config import WorkerConfig
from sergeant.control import (
    Outcome,
    WorkerCancelled,
    WorkerInterrupt,
    WorkerMaxRetries,
    WorkerRequeue,
    WorkerRetry,
    WorkerStop,
    WorkerTimedout,
)
from sergeant.objects import Task

__all__ = [
    "Executor",
    "HookTarget",
    "Outcome",
    "Runner",
    "TaskSource",
    "execute_one",
    "is_noop",
    "noop_hook",
    "run_task",
    "run_task_with_value",
]


class HookTarget(typing.Protocol):
    """What an executor needs from a worker: its config, logger, ``work`` and hooks."""

    config: WorkerConfig
    logger: logging.Logger

    def work(self, task: Task) -> typing.Any: ...
    def pre_work(self, task: Task) -> None: ...
    def post_work(self, task: Task, success: bool, exception: BaseException | None) -> None: ...
    def on_success(self, task: Task, returned_value: typing.Any) -> None: ...
    def on_failure(self, task: Task, exception: Exception) -> None: ...
    def on_timeout(self, task: Task) -> None: ...
    def on_retry(self, task: Task) -> None: ...
    def on_requeue(self, task: Task) -> None: ...
    def on_max_retries(self, task: Task) -> None: ...
    def on_stop(self, task: Task) -> None: ...
    def on_cancel(self, task: Task) -> None: ...


class TaskSource(typing.Protocol):
    """Where an executor gets tasks from, and tells how each one ended."""

    def __iter__(self) -> typing.Iterator[Task]: ...
    def started(self, task: Task) -> None: ...
    def settle(self, task: Task, outcome: Outcome, value: typing.Any = None) -> None: ...


class Executor(typing.Protocol):
    """Runs every task of a source until it is exhausted or the loop is interrupted."""

    def execute_tasks(self, tasks: TaskSource) -> None: ...


def _log_event(target: HookTarget, event: str, level: int, message: str, task: Task) -> None:
    if getattr(target.config.logging.events, event):
        target.logger.log(level, message, extra={"event": event[3:], "task": task})


_NOOP_MARK = "__sergeant_noop_hook__"
_F = typing.TypeVar("_F", bound=typing.Callable[..., typing.Any])


def noop_hook(function: _F) -> _F:
    """Mark a base-class hook that does nothing, so executors may skip calling it."""
    setattr(function, _NOOP_MARK, True)
    return function


def is_noop(target: HookTarget, name: str) -> bool:
    """True when ``target``'s hook ``name`` is still the base class's no-op (a wrapper that
    delegates its hooks, such as the timed target, answers for the target it wraps)."""
    return bool(getattr(getattr(target, name), _NOOP_MARK, False))


def _call_hook(target: HookTarget, name: str, task: Task, *args: typing.Any) -> None:
    """Call a hook that may not change the course, unless it is a no-op."""
    if not is_noop(target, name):
        _guarded(target, name, task, *args)


def _guarded(target: HookTarget, name: str, task: Task, *args: typing.Any) -> None:
    """Call a hook that may not change the course: log and swallow anything but interrupts."""
    try:
        getattr(target, name)(task, *args)
    except WorkerInterrupt:
        raise
    except BaseException as exc:  # control flow other than interrupts has no meaning here
        target.logger.error(
            "%s has failed: %r",
            name,
            exc,
            exc_info=True,
            extra={"event": "hook_failed", "task": task},
        )


def _route(target: HookTarget, name: str, task: Task, *args: typing.Any) -> Outcome | None:
    """Call a hook that may redirect the outcome through retry/requeue/max retries."""
    try:
        getattr(target, name)(task, *args)
    except WorkerRetry:
        return handle_retry(target, task)
    except WorkerMaxRetries:
        return handle_max_retries(target, task)
    except WorkerRequeue:
        return handle_requeue(target, task)
    except WorkerInterrupt:
        raise
    except BaseException as exc:
        target.logger.error(
            "%s has failed: %r",
            name,
            exc,
            exc_info=True,
            extra={"event": "hook_failed", "task": task},
        )
    return None


def handle_retry(target: HookTarget, task: Task) -> Outcome:
    _log_event(target, "on_retry", logging.INFO, "task has retried", task)
    _call_hook(target, "on_retry", task)
    return Outcome.RETRY


def handle_max_retries(target: HookTarget, task: Task) -> Outcome:
    _log_event(target, "on_max_retries", logging.ERROR, "task has reached max retries", task)
    _call_hook(target, "on_max_retries", task)
    return Outcome.MAX_RETRIES


def handle_requeue(target: HookTarget, task: Task) -> Outcome:
    _log_event(target, "on_requeue", logging.INFO, "task has requeued", task)
    _call_hook(target, "on_requeue", task)
    return Outcome.REQUEUE


def handle_failure(target: HookTarget, task: Task, exception: Exception) -> Outcome:
    _log_event(target, "on_failure", logging.ERROR, f"task has failed: {exception!r}", task)
    return _route(target, "on_failure", task, exception) or Outcome.FAILURE


def handle_timeout(target: HookTarget, task: Task) -> Outcome:
    _log_event(target, "on_timeout", logging.ERROR, "task has timed out", task)
    return _route(target, "on_timeout", task) or Outcome.TIMEOUT


def handle_cancel(target: HookTarget, task: Task) -> Outcome:
    _log_event(target, "on_cancel", logging.INFO, "task was cancelled", task)
    _call_hook(target, "on_cancel", task)
    return Outcome.CANCELLED


def handle_stop(target: HookTarget, task: Task) -> None:
    _log_event(target, "on_stop", logging.INFO, "worker was stopped by a task", task)
    _call_hook(target, "on_stop", task)


def run_task(target: HookTarget, task: Task) -> Outcome:
    """Run ``work`` for one task with its pre/post hooks and route the outcome.

    Raises:
        WorkerInterrupt: the task (or a hook) asked to stop or respawn the worker;
            ``on_stop`` has been called for a stop.
    """
    return run_task_with_value(target, task)[0]


def run_task_with_value(target: HookTarget, task: Task) -> tuple[Outcome, typing.Any]:
    """:func:`run_task`, also returning what ``work`` gave: its return value after a
    success, else the exception it raised (stored as the task's result when asked).

    Raises:
        WorkerInterrupt: as :func:`run_task`.
    """
    ended = _Ended()
    Runner(target).execute(ended, task)
    return ended.outcome, ended.value


def execute_one(tasks: TaskSource, target: HookTarget, task: Task) -> None:
    """Run one task from ``tasks`` and settle it there, whatever its outcome.

    Raises:
        WorkerInterrupt: as :func:`run_task`, after settling the task as interrupted.
    """
    Runner(target).execute(tasks, task)


class _Ended:
    """A task source for one task that keeps how it was settled."""

    outcome = Outcome.INTERRUPTED
    value: typing.Any = None

    def __iter__(self) -> typing.Iterator[Task]:
        return iter(())

    def started(self, task: Task) -> None:
        pass

    def settle(self, task: Task, outcome: Outcome, value: typing.Any = None) -> None:
        self.outcome, self.value = outcome, value


#: What ``work`` may raise that is routed to hooks (anything else propagates untouched).
_ROUTED = (
    WorkerTimedout,
    WorkerCancelled,
    WorkerRetry,
    WorkerMaxRetries,
    WorkerRequeue,
    WorkerInterrupt,
    Exception,
)


def _after_raise(target: HookTarget, task: Task, exc: BaseException) -> tuple[Outcome, typing.Any]:
    """The outcome, and ``exc`` as the value, when ``work`` raised one of :data:`_ROUTED`.

    Raises:
        WorkerInterrupt: ``exc`` itself, after ``post_work`` (and ``on_stop`` for a stop).
    """
    if isinstance(exc, WorkerTimedout) and not exc.args:
        # Raised asynchronously (a signal, the thread killer) as a bare class: name the limit.
        exc.args = (f"task exceeded its timeout of {target.config.timeouts.timeout:g}s",)
    _call_hook(target, "post_work", task, False, exc)
    if isinstance(exc, WorkerTimedout):
        return handle_timeout(target, task), exc
    if isinstance(exc, WorkerCancelled):
        return handle_cancel(target, task), exc
    if isinstance(exc, WorkerRetry):
        return handle_retry(target, task), exc
    if isinstance(exc, WorkerMaxRetries):
        return handle_max_retries(target, task), exc
    if isinstance(exc, WorkerRequeue):
        return handle_requeue(target, task), exc
    if isinstance(exc, WorkerInterrupt):
        if isinstance(exc, WorkerStop):
            handle_stop(target, task)
        raise exc
    return handle_failure(target, task, typing.cast(Exception, exc)), exc


#: Looked up once: an enum member's lookup on its class costs ~60 ns, per task here.
_SUCCESS = Outcome.SUCCESS


class Runner:
    """Runs tasks on one target, as :func:`execute_one`, with what every task would ask
    decided once: which hooks on the success path are no-ops, and whether a success is
    logged. Executors build one per ``execute_tasks`` (hooks are not replaced mid-run).
    """

    def __init__(self, target: HookTarget) -> None:
        self.target = target
        self._pre_work = not is_noop(target, "pre_work")
        self._post_work = not is_noop(target, "post_work")
        self._on_success = not is_noop(target, "on_success")
        self._log_success = bool(target.config.logging.events.on_success)

    def execute(self, tasks: TaskSource, task: Task) -> None:
        """Run ``task`` and settle it in ``tasks`` (see :func:`execute_one`)."""
        target = self.target
        try:
            tasks.started(task)
        except WorkerCancelled as exc:  # cancelled before it started: work does not run
            tasks.settle(task, handle_cancel(target, task), exc)
            return
        try:
            if self._pre_work:
                _guarded(target, "pre_work", task)
            try:
                value = target.work(task)
            except _ROUTED as exc:
                outcome, value = _after_raise(target, task, exc)
            else:
                if self._post_work:
                    _guarded(target, "post_work", task, True, None)
                if self._log_success:
                    _log_event(
                        target, "on_success", logging.INFO, "task has finished successfully", task
                    )
                if self._on_success:
                    _guarded(target, "on_success", task, value)
                outcome = _SUCCESS
        except WorkerInterrupt:
            tasks.settle(task, Outcome.INTERRUPTED)
            raise
        except BaseException as exc:  # SystemExit and the like end the worker: charge it
            tasks.settle(task, Outcome.ABORTED, exc)
            raise
        tasks.settle(task, outcome, value)
