"""The threaded executor: ``number_of_threads`` tasks at a time in one worker process.

With ``Timeouts(timeout=T, grace_period=G)`` and ``T > 0``, each thread arms its
own deadlines around ``work``: at ``T`` the thread killer raises ``WorkerTimedout``
in that thread (routed to ``on_timeout``); a thread that has not let go by
``T + G`` (blocked in C code, a catastrophic regex) makes the watchdog process
kill the worker, and the supervisor starts a fresh one.
"""

from __future__ import annotations

import contextlib
import threading
import typing

from sergeant.control import WorkerTimedout
from sergeant.executor._executor import HookTarget, Runner, TaskSource
from sergeant.executor.cancel import Cancels
from sergeant.executor.serial import TimedTarget, make_process_killer, thread_guard
from sergeant.killer import ShutdownRequested
from sergeant.killer.thread import ThreadKiller, clear_async_exception, raise_in_thread
from sergeant.objects import Task

if typing.TYPE_CHECKING:
    from sergeant.killer.process import ProcessKiller

__all__ = ["ThreadedExecutor"]


class ThreadedExecutor:
    """Runs tasks in a pool of threads that share one task source.

    The first ``stop()``/``respawn()`` (or unexpected error) from any thread ends
    the pull for every thread; running tasks finish, then it is re-raised. The
    threads are daemons, joined before ``execute_tasks`` returns; when the join is
    interrupted (``KeyboardInterrupt``), they are asked to stop, and the process can
    exit without them.
    """

    def __init__(self, target: HookTarget, number_of_threads: int) -> None:
        self.target = target
        self.number_of_threads = number_of_threads
        self._pull_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._interrupt: BaseException | None = None
        self._stopping = False
        self._pulling: int | None = None  # the thread waiting on the task source
        self._stop_sent_to: int | None = None
        self._watchdog: ProcessKiller | None = None
        self._thread_killer: ThreadKiller | None = None
        #: What ``Worker.cancel`` can reach: each running task's thread.
        self.cancels = Cancels(target.config)

    def request_stop(self) -> None:
        """Stop pulling tasks; running tasks finish (called from the SIGTERM handler).

        A thread idle on the task source gets ``ShutdownRequested`` raised in it,
        which ends the loop; no task is interrupted.
        """
        self._stopping = True
        self._wake_puller()

    def _wake_puller(self) -> None:
        """End the wait of the thread blocked on the task source, if another thread."""
        with self._state_lock:
            puller = self._pulling
            if (
                puller is not None
                and puller != threading.get_ident()
                and raise_in_thread(puller, ShutdownRequested)
            ):
                self._stop_sent_to = puller

    def execute_tasks(self, tasks: TaskSource) -> None:
        """Run every task of the source in the pool; re-raise the first interrupt."""
        with contextlib.ExitStack() as stack:
            stack.callback(self.cancels.close)
            target = self.target
            if target.config.timeouts.timeout > 0:
                self._watchdog = stack.enter_context(make_process_killer(target.config))
                self._thread_killer = stack.enter_context(ThreadKiller(WorkerTimedout))
                target = typing.cast(HookTarget, TimedTarget(target, self._guard))
            iterator = iter(tasks)
            # Daemons, so an interrupted join (below) never keeps the interpreter alive.
            threads = [
                threading.Thread(
                    target=self._run,
                    args=(tasks, iterator, target),
                    name=f"sergeant-executor-{i}",
                    daemon=True,
                )
                for i in range(self.number_of_threads)
            ]
            for thread in threads:
                thread.start()
            try:
                for thread in threads:
                    thread.join()
            except BaseException:  # such as KeyboardInterrupt, or a test's timeout
                self.request_stop()  # the threads stop pulling; running tasks finish
                raise
        if self._interrupt is not None:
            raise self._interrupt

    def cancel_running(self, task_id: str) -> bool:
        """Raise WorkerCancelled in the thread running ``task_id`` (see ``Cancels``);
        False when it does not run here."""
        return self.cancels.cancel_in_thread(task_id)

    def _guard(self, task: Task) -> typing.ContextManager[None]:
        assert self._watchdog is not None
        assert self._thread_killer is not None
        timeouts = self.target.config.timeouts
        return thread_guard(timeouts, self._watchdog, self._thread_killer, task.id)

    def _next(self, iterator: typing.Iterator[Task]) -> Task | None:
        with self._pull_lock:
            if self._interrupt is not None or self._stopping:
                return None
            me = threading.get_ident()
            with self._state_lock:
                self._pulling = me
            try:
                task = next(iterator, None)
            finally:
                with self._state_lock:
                    self._pulling = None
                    if self._stop_sent_to == me:  # never let it land in the next task
                        clear_async_exception(me)
                        self._stop_sent_to = None
            # Pulled after a stop request: it stays leased, closing the consumer releases it.
            return None if self._stopping else task

    def _run(self, tasks: TaskSource, iterator: typing.Iterator[Task], target: HookTarget) -> None:
        execute = Runner(target).execute
        cancels, me = self.cancels, threading.get_ident()
        try:
            while (task := self._next(iterator)) is not None:
                cancels.running_in(task.id, me)
                try:
                    execute(tasks, task)
                finally:
                    cancels.ended(task.id)
        except BaseException as exc:  # handed to the main thread, which re-raises it
            with self._state_lock:
                if self._interrupt is None:
                    self._interrupt = exc
            self._wake_puller()  # an idle source never returns by itself
