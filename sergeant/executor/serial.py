"""The serial executor: one task at a time in the worker's main thread."""

from __future__ import annotations

from sergeant._control import WorkerInterrupt
from sergeant.executor._executor import HookTarget, Outcome, TaskSource, run_task

__all__ = ["SerialExecutor"]


class SerialExecutor:
    """Runs tasks one after another, settling each as soon as its outcome is known."""

    def __init__(self, target: HookTarget) -> None:
        self.target = target

    def execute_tasks(self, tasks: TaskSource) -> None:
        """Run every task of the source; an interrupt settles the current task and propagates."""
        for task in tasks:
            tasks.started(task)
            try:
                outcome = run_task(self.target, task)
            except WorkerInterrupt:
                tasks.settle(task, Outcome.INTERRUPTED)
                raise
            tasks.settle(task, outcome)
