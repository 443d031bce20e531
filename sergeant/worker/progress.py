"""``Reporting``: a running task reports its progress; anyone reads it back by task id.

``set_progress`` is cheap enough to call in a tight loop: it keeps the value in
memory and writes it to the broker at most once per
``sergeant.consume.progress.WRITE_INTERVAL_SECONDS``, plus once when the task ends
if the last value was not written yet (see ``sergeant.consume.progress``).
"""

from __future__ import annotations

import threading
import time

from sergeant.broker import Broker
from sergeant.consume import Consumer, CurrentTask
from sergeant.objects import Progress, Task

__all__ = ["Reporting"]

_monotonic = time.monotonic  # a module global: one lookup less per call


class Reporting:
    """The progress methods of ``Worker``."""

    broker: Broker
    _current: threading.local | CurrentTask
    _consumer: Consumer | None

    def set_progress(self, fraction: float, message: str | None = None) -> None:
        """Record how far the running task is, from inside ``work`` (or its hooks).

        The latest value is kept in memory and stored at most every half second,
        and once more when the task ends, so the stored value is always the last
        one; ``sergeant stats`` shows it beside the running task, and
        ``get_progress(task_id)`` reads it back. With several threads it is the
        progress of this thread's task.

        Args:
            fraction: how much is done, from 0.0 to 1.0.
            message: a short text to show with it, or None.

        Raises:
            ValueError: ``fraction`` is not a number from 0.0 to 1.0.
            TypeError: ``message`` is neither a str nor None.
            RuntimeError: no task runs in this thread (outside ``work`` and its
                hooks, or in a thread of the task's own): a value reported there
                would belong to no task.
        """
        try:
            in_range = 0.0 <= fraction <= 1.0  # False for NaN
        except TypeError:
            in_range = False
        if not in_range:
            raise ValueError(
                f"set_progress(fraction): expected a number from 0.0 to 1.0, got {fraction!r}"
            )
        if message is not None and type(message) is not str:
            raise TypeError(f"set_progress(message): expected a str or None, got {message!r}")
        try:
            task: Task | None = self._current.task
        except AttributeError:  # a thread that never ran a task
            task = None
        consumer = self._consumer
        if task is None or consumer is None:
            raise RuntimeError(
                "set_progress() called while no task runs in this thread: call it from "
                "work(task) (or its hooks), in the thread that runs the task"
            )
        # The common case inline, one call less per call: kept in memory, not yet due.
        book = consumer.progress
        cell = book.cells.get(task.id)
        if cell is not None:
            now = _monotonic()
            if now < cell.due:
                cell.value = (fraction, message, now)
                cell.pending = True
                return
        book.report(task.id, fraction, message)

    def get_progress(self, task_id: str) -> Progress | None:
        """The last progress stored for ``task_id``, or None when it recorded none.

        The record is kept as long as results (``WorkerConfig.result_ttl_seconds``)
        when those are kept, else a day (``sergeant.broker.progress.DEFAULT_TTL_SECONDS``);
        after that it is None again. Call ``init_broker()`` first.
        """
        return self.broker.fetch_progress(task_id)
