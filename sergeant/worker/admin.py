"""Administering a queue from ``Worker``: popping by hand, counting, purging,
dead letters and locks.

A mixin of ``sergeant.worker.Worker``; every call goes through the ``Broker``.
"""

from __future__ import annotations

from sergeant.broker import Broker, DeadLetter, Lock
from sergeant.config import WorkerConfig
from sergeant.objects import Task

__all__ = ["Administering"]


class Administering:
    """Queue and dead-letter administration, and named locks (0.27 methods)."""

    config: WorkerConfig
    broker: Broker

    # -- consuming by hand ------------------------------------------------------------

    def get_next_tasks(self, number_of_tasks: int, task_name: str | None = None) -> list[Task]:
        """Pop up to ``number_of_tasks`` tasks for good: the caller owns them (0.27 semantics)."""
        return self.broker.pop_tasks(task_name or self.config.name, number_of_tasks)

    def purge_tasks(self, task_name: str | None = None) -> int:
        """Delete the queue's ready and delayed tasks; returns how many."""
        return self.broker.purge_tasks(task_name or self.config.name)

    def number_of_enqueued_tasks(
        self, task_name: str | None = None, include_delayed: bool = False
    ) -> int:
        """Ready tasks in the queue, plus delayed ones when ``include_delayed``."""
        return self.broker.number_of_enqueued_tasks(task_name or self.config.name, include_delayed)

    def lock(self, name: str) -> Lock:
        """A named lock on the broker (``acquire``, ``release``, ``is_locked``, TTL methods)."""
        return self.broker.lock(name)

    # -- dead letters -----------------------------------------------------------------

    def get_dead_tasks(
        self, task_name: str | None = None, limit: int = 100
    ) -> list[tuple[Task | None, DeadLetter]]:
        """Dead tasks, oldest first: the task (None if undecodable) and its reason and error."""
        return self.broker.dead_tasks(task_name or self.config.name, limit)

    def requeue_dead_tasks(self, task_name: str | None = None, limit: int = 0) -> int:
        """Put up to ``limit`` dead tasks (0 = all) back in the queue; returns how many."""
        return self.broker.requeue_dead_tasks(task_name or self.config.name, limit)

    def purge_dead_tasks(self, task_name: str | None = None) -> int:
        """Delete the queue's dead tasks; returns how many."""
        return self.broker.purge_dead_tasks(task_name or self.config.name)

    def number_of_dead_tasks(self, task_name: str | None = None) -> int:
        """How many dead tasks the queue has."""
        return self.broker.number_of_dead_tasks(task_name or self.config.name)
