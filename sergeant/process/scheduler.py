"""The scheduler: pushes the ticks of a worker's ``config.schedules`` to its queue.

One runs in every supervisor (and so in ``sergeant run``) of a worker that has
schedules, and ``sergeant schedule module:Class`` runs one alone. Every scheduler
computes the same ticks (:mod:`sergeant.ticks`) and tries to push every due tick
with ``Broker.push_tick``; the broker stores each tick once (``Connector.push_once``),
so any number of schedulers push each tick exactly once, and a tick whose scheduler
dies is pushed by the others. Each pushed tick is tried again 3.5 s and 12 s later
(:data:`RETRY_AFTER_SECONDS`), which finishes a push a dead scheduler left pending
(MongoDB; a no-op elsewhere).

Timing: the loop sleeps until the next tick of any schedule (or a retry), at most
:data:`MAX_SLEEP_SECONDS` at a time to notice ``stop()``; it never polls the broker
in between. A tick is pushed only while it is at most :data:`LATE_SECONDS` old; an
older one (no scheduler ran then, or this one was stalled) is skipped and logged,
except that at start the latest tick within ``Schedule.catch_up_seconds`` is pushed
once.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import typing

from sergeant import ticks
from sergeant.broker import Broker
from sergeant.broker.schedules import INDEX_SECONDS, ONCE_SETTLE_SECONDS, ScheduleRecord
from sergeant.config import Schedule
from sergeant.errors import SergeantError

__all__ = [
    "LATE_SECONDS",
    "MAX_SLEEP_SECONDS",
    "Scheduler",
    "describe",
    "keep_seconds",
    "load_scheduler",
    "start_scheduler",
]

#: A due tick is pushed at most this many seconds after its time; later, it is skipped.
LATE_SECONDS = 5.0
#: Longest sleep of the loop, so that ``stop()`` is seen within it.
MAX_SLEEP_SECONDS = 1.0
#: Seconds after a tick when every scheduler pushes it again (finishing a pending push);
#: the second try covers clocks that differ by up to several seconds.
RETRY_AFTER_SECONDS = (ONCE_SETTLE_SECONDS + 0.5, 4 * ONCE_SETTLE_SECONDS)
#: Extra seconds a tick's once mark is kept, for clock differences between schedulers.
KEEP_MARGIN_SECONDS = 300.0


def keep_seconds(schedule: Schedule) -> float:
    """How long a tick's once mark must last: past the last moment any scheduler may
    push that tick (late, caught up, or retried), with a margin for clock skew."""
    window = max(schedule.catch_up_seconds, LATE_SECONDS)
    return window + max(RETRY_AFTER_SECONDS) + KEEP_MARGIN_SECONDS


def describe(schedule: Schedule) -> str:
    """``'cron */5 * * * * (Europe/Berlin)'`` or ``'every 30s'``."""
    if schedule.cron is not None:
        return f"cron {schedule.cron} ({schedule.timezone})"
    return f"every {schedule.every_seconds:g}s"


@dataclasses.dataclass
class _State:
    schedule: Schedule
    next_due: float = 0.0
    last_tick: float | None = None


class Scheduler:
    """Pushes the ticks of ``schedules`` to ``queue``; see the module docstring.

    Args:
        broker: the worker's broker.
        queue: the worker's queue (``config.name``).
        schedules: the worker's ``config.schedules``.
        logger: where to log; defaults to ``logging.getLogger('sergeant.scheduler')``.
    """

    def __init__(
        self,
        broker: Broker,
        queue: str,
        schedules: typing.Sequence[Schedule],
        logger: logging.Logger | None = None,
    ) -> None:
        self.broker = broker
        self.queue = queue
        self.logger = logger or logging.getLogger("sergeant.scheduler")
        self._states = [_State(schedule) for schedule in schedules]
        self._retries: list[tuple[float, _State, float]] = []
        self._next_index = 0.0
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # -- one pass, at a given time (the loop passes time.time()) ------------------------

    def begin(self, now: float) -> None:
        """Start at ``now``: push each schedule's catch-up tick if it has one, and
        set the first tick due (the ticks at most ``LATE_SECONDS`` old included)."""
        for state in self._states:
            schedule = state.schedule
            record = self._read_record(schedule)
            state.last_tick = record["last_tick"] if record is not None else None
            state.next_due = ticks.next_tick(schedule, now - LATE_SECONDS)
            last = ticks.last_tick(schedule, now)
            if last < state.next_due and now - last <= schedule.catch_up_seconds:
                self.logger.info(
                    "schedule %r: catching up the tick of %s", schedule.id, _when(last),
                    extra={"event": "schedule_catch_up", "schedule": schedule.id},
                )  # fmt: skip
                self._push(state, last)
        self.step(now)
        for state in self._states:
            self._write_record(state)  # the next tick, shown before the first push

    def step(self, now: float) -> float:
        """Push what is due at ``now`` and retry pushed ticks whose time has come;
        returns when something is next due (Unix seconds); at least
        ``MAX_SLEEP_SECONDS`` ahead after a push the broker refused."""
        refused = False
        for state in self._states:
            refused |= not self._push_due(state, now)
        due = [retry for retry in self._retries if retry[0] <= now]
        self._retries = [retry for retry in self._retries if retry[0] > now]
        for _, state, tick in due:
            self._retry(state, tick)
        if now >= self._next_index:
            self._index(now)
        wakes = [state.next_due for state in self._states]
        wakes += [at for at, _, _ in self._retries]
        wake = min([*wakes, self._next_index])
        return max(wake, now + MAX_SLEEP_SECONDS) if refused else wake

    def _push_due(self, state: _State, now: float) -> bool:
        """Push the schedule's due ticks; False if the broker refused one (it stays due)."""
        schedule = state.schedule
        pushed = False
        while state.next_due <= now:
            tick = state.next_due
            if now - tick > LATE_SECONDS:
                state.next_due = ticks.next_tick(schedule, now - LATE_SECONDS)
                self.logger.warning(
                    "schedule %r: skipping ticks from %s, more than %gs late",
                    schedule.id, _when(tick), LATE_SECONDS,
                    extra={"event": "schedule_skipped", "schedule": schedule.id},
                )  # fmt: skip
                continue
            if not self._push(state, tick, record=False):
                return False  # due again at the next pass
            state.next_due = ticks.next_tick(schedule, tick)
            pushed = True
        if pushed:
            self._write_record(state)
        return True

    def _push(self, state: _State, tick: float, record: bool = True) -> bool:
        """Push one tick (once across schedulers); False if the broker failed."""
        schedule = state.schedule
        try:
            stored = self._push_tick(schedule, tick)
        except SergeantError as exc:
            self.logger.warning(
                "schedule %r: cannot push the tick of %s yet: %s", schedule.id, _when(tick), exc,
                extra={"event": "schedule_push_failed", "schedule": schedule.id},
            )  # fmt: skip
            return False
        if stored:  # DEBUG: an every-second schedule would fill the log at INFO
            self.logger.debug(
                "schedule %r: pushed the tick of %s", schedule.id, _when(tick),
                extra={"event": "schedule_pushed", "schedule": schedule.id, "tick": tick},
            )  # fmt: skip
        state.last_tick = tick if state.last_tick is None else max(state.last_tick, tick)
        self._retries += [(tick + after, state, tick) for after in RETRY_AFTER_SECONDS]
        if record:
            self._write_record(state)
        return True

    def _push_tick(self, schedule: Schedule, tick: float) -> bool:
        """``Broker.push_tick`` for this schedule's tick (raises SergeantError)."""
        return self.broker.push_tick(
            self.queue, schedule.id, tick, schedule.kwargs, schedule.priority,
            keep_seconds(schedule),
        )  # fmt: skip

    def _retry(self, state: _State, tick: float) -> None:
        schedule = state.schedule
        try:
            finished = self._push_tick(schedule, tick)
        except SergeantError as exc:
            self.logger.warning("schedule %r: cannot retry a tick: %s", schedule.id, exc)
            return
        if finished:
            self.logger.info(
                "schedule %r: finished the push of the tick of %s", schedule.id, _when(tick),
                extra={"event": "schedule_pushed", "schedule": schedule.id, "tick": tick},
            )  # fmt: skip

    def _index(self, now: float) -> None:
        try:
            self.broker.index_schedules((self.queue, s.schedule.id) for s in self._states)
        except SergeantError as exc:
            self.logger.warning("schedules: cannot update the index: %s", exc)
            self._next_index = now + MAX_SLEEP_SECONDS
            return
        self._next_index = now + INDEX_SECONDS

    def _read_record(self, schedule: Schedule) -> ScheduleRecord | None:
        try:
            return self.broker.schedule_record(self.queue, schedule.id)
        except SergeantError:
            return None

    def _write_record(self, state: _State) -> None:
        record: ScheduleRecord = {
            "queue": self.queue,
            "schedule": state.schedule.id,
            "what": describe(state.schedule),
            "last_tick": state.last_tick,
            "next_tick": state.next_due,
            "updated_at": time.time(),
        }
        try:
            self.broker.write_schedule_record(record)
        except SergeantError as exc:
            self.logger.warning("schedule %r: cannot record it: %s", state.schedule.id, exc)

    # -- the loop -------------------------------------------------------------------

    def run(self) -> None:
        """Push ticks until :meth:`stop`; sleeps to the next tick (at most
        ``MAX_SLEEP_SECONDS`` at a time)."""
        self.begin(time.time())
        while not self._stopping.is_set():
            try:
                wake = self.step(time.time())
            except Exception:  # a bug or an unexpected driver error: log, go on
                self.logger.exception("the scheduler's pass failed; trying again")
                wake = time.time() + MAX_SLEEP_SECONDS
            self._stopping.wait(min(max(wake - time.time(), 0.0), MAX_SLEEP_SECONDS))

    def start(self) -> None:
        """Run :meth:`run` in a daemon thread."""
        self._thread = threading.Thread(target=self._run_logged, name="sergeant-scheduler")
        self._thread.daemon = True
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the loop (within ``MAX_SLEEP_SECONDS`` and any broker call in flight)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run_logged(self) -> None:
        try:
            self.run()
        except Exception:
            self.logger.exception("the scheduler stopped on an error")


def _when(tick: float) -> str:
    return (
        time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(tick)) + f".{int(tick * 1000) % 1000:03d}Z"
    )


def load_scheduler(
    worker_module_name: str, worker_class_name: str, logger: logging.Logger | None = None
) -> Scheduler | None:
    """The scheduler of a worker class, or None if its config has no schedules.

    Raises:
        WorkerImportError: the worker module or class cannot be imported.
        ConfigError: its configuration is invalid.
    """
    from sergeant.worker.loader import load_worker_class

    config = load_worker_class(worker_module_name, worker_class_name)().config
    if not config.schedules:
        return None
    broker = Broker.from_config(config.connector, config.encoder)
    return Scheduler(broker, config.name, config.schedules, logger)


def start_scheduler(
    worker_module_name: str, worker_class_name: str, logger: logging.Logger | None = None
) -> Scheduler | None:
    """Start the scheduler of a worker class in a thread (a supervisor's), or None if
    it has no schedules, or cannot be loaded: its worker processes then say why."""
    try:
        scheduler = load_scheduler(worker_module_name, worker_class_name, logger)
    except Exception as exc:  # the user's generate_config may raise anything
        (logger or logging.getLogger("sergeant.scheduler")).debug("no scheduler: %s", exc)
        return None
    if scheduler is not None:
        scheduler.start()
    return scheduler
