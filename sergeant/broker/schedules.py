"""Schedules through the broker: a tick's task pushed once (``Connector.push_once``), and
the small records ``sergeant schedules`` and ``sergeant stats`` read.

* A tick's task carries the schedule's kwargs and priority and ``scheduled_for`` =
  the tick; its once key is the schedule id and the tick (``repr`` of the float,
  the same in every scheduler), on the worker's queue.
* A schedule's record (:func:`record_key`) is a JSON object written by every
  scheduler after each tick: ``{queue, schedule, what, last_tick, next_tick,
  updated_at}`` (ticks as Unix seconds, ``last_tick`` None before the first).
  Every scheduler computes the same values, so whichever writes last is right.
* The index (:data:`INDEX_KEY`) lists ``[queue, schedule]`` pairs, merged by each
  scheduler at start and every :data:`INDEX_SECONDS`, so ``-b`` alone finds them;
  an update lost to a concurrent one is made again at the next merge. Records and
  index entries expire :data:`RECORD_TTL_SECONDS` after their last write.
"""

from __future__ import annotations

import time
import typing

import orjson

from sergeant.connector import ONCE_SETTLE_SECONDS, Connector, Priority
from sergeant.encoder import Encoder
from sergeant.objects import Task

__all__ = [
    "INDEX_KEY",
    "INDEX_SECONDS",
    "ONCE_SETTLE_SECONDS",
    "RECORD_TTL_SECONDS",
    "ScheduleRecord",
    "Scheduling",
    "record_key",
]

#: The key listing every known ``[queue, schedule id]``.
INDEX_KEY = "sergeant-schedules"
#: Seconds between a scheduler's merges into the index.
INDEX_SECONDS = 60.0
#: Seconds a record (and an index entry) outlives its last write.
RECORD_TTL_SECONDS = 7 * 86_400.0


class ScheduleRecord(typing.TypedDict):
    """What the broker keeps of one schedule (see the module docstring)."""

    queue: str
    schedule: str
    what: str
    last_tick: float | None
    next_tick: float | None
    updated_at: float


def record_key(queue: str, schedule_id: str) -> str:
    """The key of one schedule's record."""
    return f"sergeant-schedule:{queue}:{schedule_id}"


class Scheduling:
    """Pushing ticks and keeping schedule records (a mixin of ``Broker``)."""

    connector: Connector
    encoder: Encoder

    def push_tick(
        self,
        queue: str,
        schedule_id: str,
        tick: float,
        kwargs: dict[str, typing.Any],
        priority: Priority,
        keep_seconds: float,
    ) -> bool:
        """Push the task of one tick unless it was pushed (by any scheduler) already.

        Returns:
            True when this call stored it.
        """
        task = Task(kwargs=dict(kwargs), scheduled_for=tick)
        payload = self.encoder.encode(task)
        once_key = f"{schedule_id}\x00{tick!r}"
        return self.connector.push_once(queue, payload, once_key, keep_seconds, priority)

    def write_schedule_record(self, record: ScheduleRecord) -> None:
        """Store one schedule's record (overwriting)."""
        key = record_key(record["queue"], record["schedule"])
        self.connector.key_set(key, orjson.dumps(record), RECORD_TTL_SECONDS)

    def schedule_record(self, queue: str, schedule_id: str) -> ScheduleRecord | None:
        """One schedule's record, or None if none is kept (or it is unreadable)."""
        raw = self.connector.key_get(record_key(queue, schedule_id))
        if raw is None:
            return None
        try:
            found = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return None
        return typing.cast(ScheduleRecord, found) if isinstance(found, dict) else None

    def index_schedules(self, pairs: typing.Iterable[tuple[str, str]]) -> None:
        """Merge ``(queue, schedule id)`` pairs into the index (read, merge, write)."""
        now = time.time()
        known = {
            (q, s): seen for q, s, seen in self._index_entries() if now - seen < RECORD_TTL_SECONDS
        }
        known.update({pair: now for pair in pairs})
        entries = [[q, s, seen] for (q, s), seen in sorted(known.items())]
        self.connector.key_set(INDEX_KEY, orjson.dumps(entries), RECORD_TTL_SECONDS)

    def schedule_records(self, queue: str | None = None) -> list[ScheduleRecord]:
        """The records of every indexed schedule (of ``queue`` only, if given), by
        queue then schedule id."""
        found = []
        for q, schedule_id, _ in sorted(self._index_entries()):
            if queue is not None and q != queue:
                continue
            record = self.schedule_record(q, schedule_id)
            if record is not None:
                found.append(record)
        return found

    def _index_entries(self) -> list[tuple[str, str, float]]:
        raw = self.connector.key_get(INDEX_KEY)
        try:
            entries = orjson.loads(raw) if raw is not None else []
        except orjson.JSONDecodeError:
            entries = []
        return [
            (str(e[0]), str(e[1]), float(e[2]))
            for e in entries
            if isinstance(e, list) and len(e) == 3
        ]
