"""The work loop of ``Worker``: ``work_loop()``, its phases and its summary.

A mixin of ``sergeant.worker.Worker``: it runs ``initialize``, the tasks through
the executor and the consumer, then ``finalize``, and never raises.
"""

from __future__ import annotations

import datetime
import logging
import threading
import time
import typing

from sergeant import metrics
from sergeant.broker import Broker
from sergeant.broker.results import ResultStore
from sergeant.config import WorkerConfig
from sergeant.consume import Consumer, CurrentTask
from sergeant.control import WorkerInterrupt, WorkerRespawn, WorkerStop
from sergeant.errors import BrokerFileReplaced, SergeantError
from sergeant.executor import Executor, TaskSource
from sergeant.worker import gc
from sergeant.worker.tracked import TrackedTasks

__all__ = ["WorkLoop", "WorkerSummary"]

_PhaseKey = typing.Literal["initialize_exception", "executor_exception", "finalize_exception"]


class WorkerSummary(typing.TypedDict):
    """What ``work_loop()`` returns: a plain ``dict`` with 0.27's keys, plus ``tasks_done``.

    Keys:
        start_time: when the loop started (an aware UTC datetime).
        end_time: when it ended.
        initialize_exception: what ``initialize()`` raised, or None.
        executor_exception: what running the tasks raised, or None.
        finalize_exception: what ``finalize()`` raised, or None.
        executor: ``cpu_utilization``, ``total_wall_time`` and ``total_cpu_time``
            (seconds) of the task phase; empty when ``initialize()`` ended the loop.
        respawn: a task or hook called ``respawn()``.
        stop: a task or hook called ``stop()``.
        tasks_done: tasks whose outcome was settled (new).
    """

    start_time: datetime.datetime
    end_time: datetime.datetime
    executor_exception: BaseException | None
    initialize_exception: BaseException | None
    finalize_exception: BaseException | None
    executor: dict[str, float]
    respawn: bool
    stop: bool
    tasks_done: int


class WorkLoop:
    """Runs the worker's tasks until ``max_tasks_per_run``, ``stop()`` or ``respawn()``."""

    config: WorkerConfig
    logger: logging.Logger
    broker: Broker
    executor: Executor
    _result_store: ResultStore
    _current: threading.local | CurrentTask
    _consumer: Consumer | None
    # The work loop's consumer class; the fault suite swaps in one with crash points.
    _consumer_class: typing.ClassVar[type[Consumer]] = Consumer

    if typing.TYPE_CHECKING:

        @property
        def owner_id(self) -> str: ...
        def initialize(self) -> None: ...
        def finalize(self) -> None: ...
        def on_starvation(self, time_with_no_tasks: int) -> None: ...

    def work_loop(self) -> WorkerSummary:
        """Run tasks until ``max_tasks_per_run``, ``stop()`` or ``respawn()``; never raises."""
        summary = WorkerSummary(
            start_time=_utcnow(),
            end_time=_utcnow(),
            executor_exception=None,
            initialize_exception=None,
            finalize_exception=None,
            executor={},
            respawn=False,
            stop=False,
            tasks_done=0,
        )
        if not self._run_phase(summary, "initialize_exception", self.initialize):
            summary["end_time"] = _utcnow()
            return summary
        started, started_cpu = time.perf_counter(), time.process_time()
        self._consumer = self._consumer_class(
            self.broker, self.config, self._handle_starvation, self._current, self.owner_id
        )
        # Worker.cancel reaches a running task through its executor.
        self._consumer.on_cancel_running = getattr(self.executor, "cancel_running", None)
        try:
            with gc.fewer_collections():
                execute = self.executor.execute_tasks
                self._run_phase(summary, "executor_exception", lambda: execute(self._tasks()))
        finally:
            try:
                self._consumer.close()
            except SergeantError as exc:
                # A replaced file fails every step alike: the loop's failure said so.
                if not isinstance(exc, BrokerFileReplaced) or summary["executor_exception"] is None:
                    self.logger.error(
                        "could not give back unstarted tasks: %r",
                        exc,
                        extra={"event": "close_step_failed"},
                    )
            summary["tasks_done"] = self._consumer.tasks_done
        self._run_phase(summary, "finalize_exception", self.finalize)
        wall, cpu = time.perf_counter() - started, time.process_time() - started_cpu
        summary["executor"] = {
            "cpu_utilization": cpu / wall if wall else 0.0,
            "total_wall_time": wall,
            "total_cpu_time": cpu,
        }
        summary["end_time"] = _utcnow()
        return summary

    def _tasks(self) -> TaskSource:
        """The consumer, wrapped only when results or metrics are recorded."""
        assert self._consumer is not None
        recorder = metrics.task_metrics()
        if recorder is not None:
            self.broker.on_dead_letter = recorder.dead_letter
        results = self._result_store if self.config.result_ttl_seconds > 0 else None
        if results is None and recorder is None:
            return self._consumer
        return TrackedTasks(self._consumer, results, recorder, self.logger)

    def _run_phase(
        self, summary: WorkerSummary, key: _PhaseKey, body: typing.Callable[[], None]
    ) -> bool:
        """Run a phase of the loop; record interrupts, and failures under ``key``."""
        try:
            body()
        except WorkerRespawn:
            summary["respawn"] = True
        except WorkerStop:
            summary["stop"] = True
        except Exception as exc:
            phase = key.removesuffix("_exception")
            self.logger.error(
                "%s has failed: %r", phase, exc, exc_info=True, extra={"event": f"{phase}_failed"}
            )
            summary[key] = exc
            return False
        else:
            return True
        return False

    def _handle_starvation(self, time_with_no_tasks: int) -> None:
        if self.config.logging.events.on_starvation:
            self.logger.warning("worker is starving", extra={"event": "starvation"})
        try:
            self.on_starvation(time_with_no_tasks)
        except WorkerInterrupt:
            raise
        except Exception as exc:
            self.logger.error(
                "on_starvation has failed: %r", exc, exc_info=True, extra={"event": "hook_failed"}
            )


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)
