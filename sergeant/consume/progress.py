"""The progress of the running tasks: the latest value in memory, throttled to the broker.

``Worker.set_progress`` lands in :meth:`ProgressBook.report`, which only keeps the
value unless :data:`WRITE_INTERVAL_SECONDS` have passed since the task's last write
(the first call writes at once). When the task is settled, a value not yet written
is written (:meth:`ProgressBook.finish`), so the stored record is always the last
one. The heartbeat reads the latest values from memory (:meth:`ProgressBook.latest`).

A broker fault on a write is logged (once a minute) and never reaches ``work``:
progress is best effort.
"""

from __future__ import annotations

import logging
import time
import typing

from sergeant.broker import Broker
from sergeant.errors import ConnectorError
from sergeant.logging import refusals
from sergeant.objects import Progress

__all__ = ["WRITE_INTERVAL_SECONDS", "ProgressBook", "ProgressCell"]

logger = logging.getLogger("sergeant.progress")

#: Shortest pause, in seconds, between two writes of one task's progress: short
#: enough that an operator sees it move, long enough that a tight loop of calls
#: costs one broker write per interval instead of one per call.
WRITE_INTERVAL_SECONDS = 0.5


class ProgressCell:
    """One running task's latest progress, and when it may next be written."""

    __slots__ = ("due", "pending", "value")

    def __init__(self) -> None:
        #: ``(fraction, message, monotonic seconds)``, replaced whole (GIL-atomic), so
        #: the heartbeat thread never reads a fraction with another call's message.
        self.value: tuple[float, str | None, float] = (0.0, None, 0.0)
        self.due = 0.0
        self.pending = False


class ProgressBook:
    """The progress cells of the tasks running now, by task id.

    Args:
        broker: where the records are stored.
        ttl_seconds: how long a stored record is kept.
    """

    def __init__(
        self,
        broker: Broker,
        ttl_seconds: float,
        on_first_cell: typing.Callable[[], None] | None = None,
    ) -> None:
        self.broker = broker
        self.ttl_seconds = ttl_seconds
        self._on_first_cell = on_first_cell
        #: Only tasks that reported have a cell (one thread writes each; GIL-atomic).
        self.cells: dict[str, ProgressCell] = {}
        self._refused = refusals.Throttle()

    def report(self, task_id: str, fraction: float, message: str | None) -> None:
        """Keep the latest progress of ``task_id``; write it if its interval has passed."""
        now = time.monotonic()
        cell = self.cells.get(task_id)
        if cell is None:
            cell = self.cells[task_id] = ProgressCell()
            if self._on_first_cell is not None:
                self._on_first_cell()
        cell.value = (fraction, message, now)
        if now < cell.due:
            cell.pending = True
            return
        cell.due = now + WRITE_INTERVAL_SECONDS
        self._write(task_id, cell)

    def finish(self, task_id: str) -> None:
        """``task_id`` ended: write its value if one is not written yet, forget its cell."""
        cell = self.cells.pop(task_id, None)
        if cell is not None and cell.pending:
            self._write(task_id, cell)

    def latest(self, task_id: str) -> tuple[float, str | None] | None:
        """The latest progress of a running task, from memory, or None if it reported none."""
        cell = self.cells.get(task_id)
        if cell is None:
            return None
        fraction, message, _ = cell.value
        return fraction, message

    def _write(self, task_id: str, cell: ProgressCell) -> None:
        cell.pending = False
        fraction, message, at = cell.value
        updated_at = time.time() - (time.monotonic() - at)
        try:
            self.broker.store_progress(
                task_id, Progress(fraction, message, updated_at), self.ttl_seconds
            )
        except ConnectorError as exc:
            if self._refused.due():
                logger.warning(
                    "could not store the progress of task %s: %s",
                    task_id,
                    exc,
                    extra={"event": "progress_store_failed", "task_id": task_id},
                )
