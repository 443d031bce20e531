"""The serial executor: one task at a time in the worker's main thread.

With ``Timeouts(timeout=T, grace_period=G)`` and ``T > 0``, ``work`` runs under two
deadlines. At ``T`` a ``SIGALRM`` (``setitimer``) raises ``WorkerTimedout`` inside
the task, which routes to ``on_timeout`` (``_sre`` and most C code check signals,
so a catastrophic regex is interrupted). At ``T + G`` the watchdog process kills
the whole worker, for tasks stuck where no signal handler can run. Outside the
main thread (no signals there) the thread killer replaces ``SIGALRM``.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import types
import typing

from sergeant.config import Timeouts
from sergeant.control import WorkerCancelled, WorkerTimedout
from sergeant.executor._executor import HookTarget, Runner, TaskSource
from sergeant.executor.cancel import Cancels
from sergeant.executor.watchdog import make_process_killer
from sergeant.killer import ShutdownRequested
from sergeant.killer.thread import ThreadKiller, raise_in_thread
from sergeant.objects import Task

if typing.TYPE_CHECKING:
    from sergeant.killer.process import ProcessKiller

__all__ = ["SerialExecutor", "TimedTarget", "make_process_killer", "thread_guard"]

Guard = typing.Callable[[Task], typing.ContextManager[None]]

#: Seconds before the alarm that raises WorkerCancelled in the main thread.
CANCEL_ALARM_SECONDS = 0.001


class TimedTarget:
    """A ``HookTarget`` whose ``work`` runs inside ``guard()``; the rest is delegated.

    Only ``work`` is timed, as in Sergeant 0.27: the hooks run outside the deadlines.
    """

    def __init__(self, target: HookTarget, guard: Guard) -> None:
        self._target = target
        self._guard = guard

    def __getattr__(self, name: str) -> typing.Any:
        return getattr(self._target, name)

    def work(self, task: Task) -> typing.Any:
        """Run the target's ``work`` under the deadlines."""
        with self._guard(task):
            return self._target.work(task)


class SerialExecutor:
    """Runs tasks one after another, settling each as soon as its outcome is known."""

    def __init__(self, target: HookTarget) -> None:
        self.target = target
        self._busy = False
        self._stopping = False
        self._in_work = False
        self._watchdog: ProcessKiller | None = None
        self._thread_killer: ThreadKiller | None = None
        #: What ``Worker.cancel`` can reach: the running task (its id) and its thread.
        self.cancels = Cancels(target.config)
        self._current: Task | None = None
        self._thread_ident: int | None = None
        self._cancel_alarm = False
        self._cancelled = False  # a cancel reached the running task

    def request_stop(self) -> None:
        """Stop before the next task (called from the SIGTERM handler, in the main thread).

        Raises:
            ShutdownRequested: right away when no task is running, so an idle
                loop waiting on the broker ends now.
        """
        self._stopping = True
        if not self._busy:
            raise ShutdownRequested()

    def execute_tasks(self, tasks: TaskSource) -> None:
        """Run every task of the source; an interrupt settles the current task and propagates."""
        timeouts = self.target.config.timeouts
        main = threading.current_thread() is threading.main_thread()
        self._thread_ident = threading.get_ident()
        with contextlib.ExitStack() as stack:
            stack.callback(self.cancels.close)
            if main:  # the alarm raises WorkerTimedout, or WorkerCancelled (cancel_running)
                previous = signal.signal(signal.SIGALRM, self._on_alarm)
                stack.callback(signal.signal, signal.SIGALRM, previous)
            if timeouts.timeout <= 0:
                self._loop(tasks, self.target)
                return
            self._watchdog = stack.enter_context(make_process_killer(self.target.config))
            if main:
                guard: Guard = self._alarm_guard
            else:
                self._thread_killer = stack.enter_context(ThreadKiller(WorkerTimedout))
                guard = self._thread_guard
            self._loop(tasks, typing.cast(HookTarget, TimedTarget(self.target, guard)))

    def _loop(self, tasks: TaskSource, target: HookTarget) -> None:
        execute = Runner(target).execute
        for task in tasks:
            if self._stopping:
                return  # the task stays leased as unstarted; closing the consumer releases it
            self._busy = True
            self._current = task  # what cancel_running looks at (while _busy)
            try:
                execute(tasks, task)
            finally:
                self._busy = False  # only now may a stop request raise: the task is settled
                if self._cancelled:
                    self._cancelled = False
                    self.cancels.ended(task.id)
            if self._stopping:
                return

    def cancel_running(self, task_id: str) -> bool:
        """Raise WorkerCancelled in ``task_id`` if it is the running task (called from
        another thread); the watchdog kills the worker if it still runs
        ``grace_period`` later. False when it does not run here."""
        current = self._current
        if not self._busy or current is None or current.id != task_id:
            return False
        if not self.cancels.request(task_id):
            return False
        self._cancelled = True
        if self._thread_ident == threading.main_thread().ident:
            self._cancel_alarm = True
            signal.setitimer(signal.ITIMER_REAL, CANCEL_ALARM_SECONDS)
            return True
        assert self._thread_ident is not None
        return raise_in_thread(self._thread_ident, WorkerCancelled)

    def _on_alarm(self, signum: int, frame: types.FrameType | None) -> None:
        if self._cancel_alarm:  # set by cancel_running, not a timeout
            self._cancel_alarm = False
            current = self._current
            if self._busy and current is not None:
                self.cancels.raise_if_cancelled(current.id)
            return
        if self._in_work:  # a late alarm after the task ended is ignored
            raise WorkerTimedout()

    @contextlib.contextmanager
    def _alarm_guard(self, task: Task) -> typing.Iterator[None]:
        timeouts = self.target.config.timeouts
        assert self._watchdog is not None
        self._watchdog.arm("main", timeouts.timeout + timeouts.grace_period, task.id)
        self._in_work = True
        signal.setitimer(signal.ITIMER_REAL, timeouts.timeout)
        try:
            yield
        finally:
            # Nested so a late alarm raised in the first block cannot skip the disarm.
            try:
                signal.setitimer(signal.ITIMER_REAL, 0)
                self._in_work = False
            finally:
                self._in_work = False
                self._watchdog.disarm("main")

    def _thread_guard(self, task: Task) -> typing.ContextManager[None]:
        assert self._watchdog is not None
        assert self._thread_killer is not None
        return thread_guard(
            self.target.config.timeouts, self._watchdog, self._thread_killer, task.id
        )


@contextlib.contextmanager
def thread_guard(
    timeouts: Timeouts,
    watchdog: ProcessKiller,
    thread_killer: ThreadKiller,
    task_id: str | None = None,
) -> typing.Iterator[None]:
    """Run the body of this thread under ``timeouts``: soft by exception, hard by the watchdog."""
    thread_id = threading.get_ident()
    slot = f"thread-{thread_id}"
    watchdog.arm(slot, timeouts.timeout + timeouts.grace_period, task_id)
    thread_killer.arm(thread_id, timeouts.timeout)
    try:
        yield
    finally:
        # Disarming the thread killer first cancels an exception sent but not raised
        # yet; nested so that one raised right here cannot skip the watchdog's disarm.
        try:
            thread_killer.disarm(thread_id)
        finally:
            watchdog.disarm(slot)
