"""The threaded executor: ``number_of_threads`` tasks at a time in one worker process."""

from __future__ import annotations

import threading
import typing

from sergeant._control import WorkerInterrupt
from sergeant.executor._executor import HookTarget, Outcome, TaskSource, run_task
from sergeant.objects import Task

__all__ = ["ThreadedExecutor"]


class ThreadedExecutor:
    """Runs tasks in a pool of threads that share one task source.

    The first ``stop()``/``respawn()`` (or unexpected error) from any thread ends
    the pull for every thread; running tasks finish, then it is re-raised.
    """

    def __init__(self, target: HookTarget, number_of_threads: int) -> None:
        self.target = target
        self.number_of_threads = number_of_threads
        self._pull_lock = threading.Lock()
        self._interrupt: BaseException | None = None

    def execute_tasks(self, tasks: TaskSource) -> None:
        """Run every task of the source in the pool; re-raise the first interrupt."""
        iterator = iter(tasks)
        threads = [
            threading.Thread(
                target=self._run, args=(tasks, iterator), name=f"sergeant-executor-{i}"
            )
            for i in range(self.number_of_threads)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if self._interrupt is not None:
            raise self._interrupt

    def _next(self, iterator: typing.Iterator[Task]) -> Task | None:
        with self._pull_lock:
            if self._interrupt is not None:
                return None
            return next(iterator, None)

    def _run(self, tasks: TaskSource, iterator: typing.Iterator[Task]) -> None:
        try:
            while (task := self._next(iterator)) is not None:
                tasks.started(task)
                try:
                    outcome = run_task(self.target, task)
                except WorkerInterrupt:
                    tasks.settle(task, Outcome.INTERRUPTED)
                    raise
                tasks.settle(task, outcome)
        except BaseException as exc:  # handed to the main thread, which re-raises it
            with self._pull_lock:
                if self._interrupt is None:
                    self._interrupt = exc
