"""``TrackedTasks``: the consumer as the executor's task source, plus what the worker
records on the way when asked: stored results (``result_ttl_seconds``) and
Prometheus metrics (under a supervisor with metrics on). Without either, the worker
hands the consumer itself to the executor.
"""

from __future__ import annotations

import logging
import typing

from sergeant.consume import Consumer
from sergeant.control import Outcome
from sergeant.errors import SergeantError
from sergeant.objects import Task

if typing.TYPE_CHECKING:
    from sergeant.broker.results import ResultStore
    from sergeant.metrics import TaskMetrics

__all__ = ["TrackedTasks"]


class TrackedTasks:
    """The consumer, wrapped to record each task's outcome.

    Args:
        consumer: where the tasks come from and are settled.
        results: where results are stored, or None when they are not kept.
        metrics: this process's metrics, or None when they are off.
        logger: the worker's logger.
    """

    def __init__(
        self,
        consumer: Consumer,
        results: ResultStore | None,
        metrics: TaskMetrics | None,
        logger: logging.Logger,
    ) -> None:
        self.consumer = consumer
        self.results = results
        self.metrics = metrics
        self.logger = logger

    def __iter__(self) -> typing.Iterator[Task]:
        return iter(self.consumer)

    def started(self, task: Task) -> None:
        """The executor is about to run ``task``."""
        if self.metrics is not None:
            self.metrics.started(id(task))
        self.consumer.started(task)

    def settle(self, task: Task, outcome: Outcome, value: typing.Any = None) -> None:
        """``task`` ended with ``outcome``; ``value`` is what ``work`` returned or raised."""
        if self.results is not None:
            self._store_result(task, outcome, value)
        if self.metrics is not None:
            self.metrics.settled(id(task), self.consumer.queue, outcome.value)
        self.consumer.settle(task, outcome, value)

    def _store_result(self, task: Task, outcome: Outcome, value: typing.Any) -> None:
        """Store the result before the acknowledgement; a broker fault loses only the result."""
        assert self.results is not None
        try:
            self.results.store(task.id, outcome, value)
        except SergeantError as exc:
            self.logger.error(
                "could not store the result of task %s: %s",
                task.id,
                exc,
                extra={"event": "result_store_failed", "task": task},
            )
