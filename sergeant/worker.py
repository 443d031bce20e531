"""``Worker``: the class users subclass (Sergeant 0.27 API).

Override ``generate_config()`` and ``work(task)``; optionally the hooks. Producers
call ``init_broker()`` then ``push_task``/``push_tasks``; a worker process calls
``init_worker()`` then ``work_loop()`` (the supervisor does both).
"""

from __future__ import annotations

import datetime
import logging
import sys
import threading
import time
import typing

from sergeant import _gc, metrics
from sergeant._tracked import TrackedTasks
from sergeant.broker import Broker
from sergeant.config import WorkerConfig
from sergeant.connector import DeadLetter, Lock, Priority, create
from sergeant.consumer import Consumer, CurrentTask, new_owner_id
from sergeant.control import (
    WorkerException,
    WorkerInterrupt,
    WorkerMaxRetries,
    WorkerRequeue,
    WorkerRespawn,
    WorkerRetry,
    WorkerStop,
    WorkerTimedout,
)
from sergeant.encoder import Encoder
from sergeant.encoder.kwargs import checked_kwargs
from sergeant.errors import BrokerFileReplaced, ConfigError, SergeantError
from sergeant.executor import Executor, SerialExecutor, TaskSource, noop_hook
from sergeant.logging import JsonFormatter
from sergeant.objects import Task, new_task_ids
from sergeant.results import ResultStore

__all__ = [
    "Worker",
    "WorkerException",
    "WorkerInterrupt",
    "WorkerMaxRetries",
    "WorkerRequeue",
    "WorkerRespawn",
    "WorkerRetry",
    "WorkerStop",
    "WorkerSummary",
    "WorkerTimedout",
]

_W = typing.TypeVar("_W", bound="Worker")
_PhaseKey = typing.Literal["initialize_exception", "executor_exception", "finalize_exception"]
_LOG_FORMAT = "%(asctime)s %(name)-12s %(process)d %(levelname)-8s %(message)s"


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


class Worker:
    """Base class of a Sergeant worker.

    Attributes:
        config: the validated ``WorkerConfig`` from ``generate_config()``.
        logger: this worker's logger (named after ``config.name``).
        broker: the task broker, set by ``init_broker()``.
    """

    config: WorkerConfig
    logger: logging.Logger
    broker: Broker
    # Private: users' subclasses often have their own ``self.results``.
    _result_store: ResultStore
    # The work loop's consumer class; the fault suite swaps in one with crash points.
    _consumer_class: typing.ClassVar[type[Consumer]] = Consumer

    def __init__(self) -> None:
        config = self.generate_config()
        if not isinstance(config, WorkerConfig):
            raise ConfigError(
                f"{type(self).__name__}.generate_config() returned {config!r}; "
                "return a sergeant.config.WorkerConfig(...)"
            )
        self.config = config
        self.logger = logging.getLogger(config.name)
        self._current: threading.local | CurrentTask = (
            threading.local() if config.number_of_threads > 1 else CurrentTask()
        )
        self._consumer: Consumer | None = None

    @property
    def owner_id(self) -> str:
        """The id this worker's leases are recorded under (``host:pid:nonce``), made
        on first use; a supervisor keeps the leases of its child by it."""
        owner: str | None = self.__dict__.get("_owner_id")
        if owner is None:
            owner = self.__dict__["_owner_id"] = new_owner_id()
        return owner

    # -- set-up -----------------------------------------------------------------------

    def generate_config(self) -> WorkerConfig:
        """Return this worker's configuration; override it.

        The default, as in 0.27, is ``WorkerConfig(name='worker')``: the queue
        ``'worker'`` on the local SQLite broker.
        """
        return WorkerConfig(name="worker")

    def init_broker(self) -> None:
        """Connect the broker (lazily: the first call opens connections)."""
        connector = create(self.config.connector.type, self.config.connector.params)
        config = self.config.encoder
        encoder = Encoder(config.serializer, config.compressor, config.signing_keys())
        self.broker = Broker(connector, encoder)
        self._result_store = ResultStore(connector, encoder, self.config.result_ttl_seconds)

    def close(self) -> None:
        """Close the broker's connections (a no-op before ``init_broker``)."""
        broker: Broker | None = getattr(self, "broker", None)
        if broker is not None:
            broker.connector.close()

    def __enter__(self: _W) -> _W:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def init_worker(self) -> None:
        """Prepare to run tasks: broker, logging, executor."""
        self.init_broker()
        self.init_logger()
        self.executor: Executor = self._make_executor()

    def init_logger(self) -> None:
        """Apply the 0.27 ``Logging`` config to this worker's logger (and nothing else)."""
        settings = self.config.logging
        self.logger.setLevel(settings.level)
        if settings.log_to_stdout and not any(
            getattr(handler, "_sergeant_stdout", False) for handler in self.logger.handlers
        ):
            handler = logging.StreamHandler(stream=sys.stdout)
            formatter = (
                JsonFormatter()
                if settings.json
                else logging.Formatter(_LOG_FORMAT, "%Y-%m-%d %H:%M:%S")
            )
            handler.setFormatter(formatter)
            handler._sergeant_stdout = True  # type: ignore[attr-defined]
            self.logger.addHandler(handler)
        for extra_handler in settings.handlers:
            if extra_handler not in self.logger.handlers:
                self.logger.addHandler(extra_handler)

    def _make_executor(self) -> Executor:
        if self.config.number_of_threads > 1:
            from sergeant.executor.threaded import ThreadedExecutor

            return ThreadedExecutor(self, self.config.number_of_threads)
        return SerialExecutor(self)

    # -- producing --------------------------------------------------------------------

    def push_task(
        self,
        kwargs: dict[str, typing.Any],
        task_name: str | None = None,
        priority: Priority = "NORMAL",
        consumable_from: float | None = None,
        trace_id: str | None = None,
    ) -> str:
        """Push one task; returns its id.

        Args:
            kwargs: the task's arguments.
            task_name: the queue; defaults to this worker's ``config.name``.
            priority: ``'HIGH'`` is served before ``'NORMAL'``.
            consumable_from: Unix seconds before which the task is not handed out.
            trace_id: a correlation id; inside ``work`` it defaults to the running
                task's trace id.

        Raises:
            TypeError: ``kwargs`` is not a dict (with str keys, under the msgpack
                and json serializers); nothing is pushed.
            sergeant.errors.EncodingError: a value cannot be encoded by the serializer.
            sergeant.errors.ConnectorError: the broker did not take the task.
        """
        checked = checked_kwargs([kwargs], "push_task(kwargs)", False, self._serializer_name)
        return self._push(checked, task_name, priority, consumable_from, trace_id)[0]

    def push_tasks(
        self,
        kwargs_list: typing.Iterable[dict[str, typing.Any]],
        task_name: str | None = None,
        priority: Priority = "NORMAL",
        consumable_from: float | None = None,
        trace_id: str | None = None,
    ) -> list[str]:
        """Push many tasks in one batch; returns their ids in order (see ``push_task``).

        Nothing is pushed when an item is refused; the error names its index.
        """
        if isinstance(kwargs_list, (dict, str, bytes)):
            raise TypeError(
                f"push_tasks(kwargs_list) is a {type(kwargs_list).__name__}, not a list; pass "
                "one kwargs dict per task, such as [{'id': 7}, {'id': 8}] (or use push_task)"
            )
        kwargs_list = kwargs_list if isinstance(kwargs_list, list) else list(kwargs_list)
        checked = checked_kwargs(
            kwargs_list, "push_tasks(kwargs_list)", True, self._serializer_name
        )
        return self._push(checked, task_name, priority, consumable_from, trace_id)

    @property
    def _serializer_name(self) -> str:
        return self.config.encoder.serializer

    def _push(
        self,
        kwargs_list: typing.Sequence[dict[str, typing.Any]],
        task_name: str | None,
        priority: Priority,
        consumable_from: float | None,
        trace_id: str | None,
    ) -> list[str]:
        _check_priority(priority)
        ids = new_task_ids(len(kwargs_list))
        # The fast path: envelopes straight from kwargs, no Task object per task.
        payloads = self.broker.encoder.encode_new(
            ids, kwargs_list, trace_id or self.get_trace_id(), time.time()
        )
        self.broker.connector.push_many(
            task_name or self.config.name, payloads, priority, consumable_from or 0.0
        )
        return ids

    def get_result(
        self, task_id: str, timeout: float | None = None, task_name: str | None = None
    ) -> typing.Any:
        """The value ``work`` returned for ``task_id``, waiting for it if needed.

        The worker that runs the task must keep results
        (``WorkerConfig.result_ttl_seconds > 0``) and share this worker's serializer.
        A dead-lettered task raises ``TaskFailed`` as soon as it is in the dead
        letters of its queue, whatever the workers keep.

        Args:
            task_id: an id returned by ``push_task`` or ``push_tasks``.
            timeout: seconds to wait at most; None waits until the result comes,
                0 looks once. Redis wakes the wait as soon as the result is stored;
                the other brokers poll, backing off to 0.2 s. The dead letters are
                looked at every 0.5 s at most.
            task_name: the queue the task was pushed to; None for this worker's own.

        Raises:
            sergeant.errors.TaskFailed: the task failed, timed out, ran out of
                retries or was dead-lettered; carries the remote exception's type
                and message, or the dead letter's ``reason``.
            sergeant.errors.ResultTimeout: no result within ``timeout``.
        """
        return self._result_store.fetch(task_id, timeout, task_name or self.config.name)

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
        return self.broker.connector.requeue_dead(task_name or self.config.name, limit)

    def purge_dead_tasks(self, task_name: str | None = None) -> int:
        """Delete the queue's dead tasks; returns how many."""
        return self.broker.connector.purge_dead(task_name or self.config.name)

    def number_of_dead_tasks(self, task_name: str | None = None) -> int:
        """How many dead tasks the queue has."""
        return self.broker.connector.dead_count(task_name or self.config.name)

    # -- inside a task ----------------------------------------------------------------

    def retry(
        self, task: Task, priority: Priority = "NORMAL", consumable_from: float | None = None
    ) -> typing.NoReturn:
        """Add 1 to ``task.run_count`` (in place, as 0.27), push it again and end this run.

        ``on_retry(task)`` then sees the new count (1 after the first retry). With
        ``max_retries=N`` a task runs at most N + 1 times: the call that finds
        ``run_count`` already at N is refused.

        Raises:
            WorkerRetry: always, after pushing (routes to ``on_retry``).
            WorkerMaxRetries: instead, when ``max_retries`` is reached (routes to
                ``on_max_retries``; the task goes to the dead letters).
        """
        if 0 < self.config.max_retries <= task.run_count:
            raise WorkerMaxRetries()
        [task.kwargs] = checked_kwargs(
            [task.kwargs], "retry(task): task.kwargs", False, self._serializer_name
        )
        task.run_count += 1  # in place, as 0.27: on_retry sees the new count
        self.broker.push_tasks(self.config.name, [task], priority, consumable_from or 0.0)
        raise WorkerRetry()

    def requeue(
        self, task: Task, priority: Priority = "NORMAL", consumable_from: float | None = None
    ) -> typing.NoReturn:
        """Push ``task`` back unchanged (same ``run_count``) and end this run of it.

        Raises:
            WorkerRequeue: always, after pushing (routes to ``on_requeue``).
        """
        [task.kwargs] = checked_kwargs(
            [task.kwargs], "requeue(task): task.kwargs", False, self._serializer_name
        )
        self.broker.push_tasks(self.config.name, [task], priority, consumable_from or 0.0)
        raise WorkerRequeue()

    def stop(self) -> typing.NoReturn:
        """End this worker (and, under a supervisor, the fleet) after this task."""
        raise WorkerStop()

    def respawn(self) -> typing.NoReturn:
        """End this worker process so the supervisor starts a fresh one."""
        raise WorkerRespawn()

    def get_trace_id(self) -> str | None:
        """The trace id of the running task (with several threads, of the one in this
        thread), or None outside a task."""
        task: Task | None = getattr(self._current, "task", None)
        return task.trace_id if task is not None else None

    # -- the loop -----------------------------------------------------------------------

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
        try:
            with _gc.fewer_collections():
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

    # -- hooks (override as needed) -------------------------------------------------------

    def initialize(self) -> None:
        """Called once when the work loop starts."""

    def finalize(self) -> None:
        """Called once when the work loop ends."""

    @noop_hook
    def pre_work(self, task: Task) -> None:
        """Called before each task."""

    @noop_hook
    def post_work(self, task: Task, success: bool, exception: BaseException | None) -> None:
        """Called after each task, whatever its outcome."""

    def work(self, task: Task) -> typing.Any:
        """Do the task; override it. Its return value goes to ``on_success``."""

    @noop_hook
    def on_success(self, task: Task, returned_value: typing.Any) -> None:
        """Called when ``work`` returned."""

    @noop_hook
    def on_failure(self, task: Task, exception: Exception) -> None:
        """Called when ``work`` raised; may call ``retry``/``requeue``."""

    @noop_hook
    def on_timeout(self, task: Task) -> None:
        """Called when ``work`` ran past ``Timeouts.timeout``; may call ``retry``/``requeue``."""

    @noop_hook
    def on_retry(self, task: Task) -> None:
        """Called after a task was retried."""

    @noop_hook
    def on_requeue(self, task: Task) -> None:
        """Called after a task was requeued."""

    @noop_hook
    def on_max_retries(self, task: Task) -> None:
        """Called when a retry was refused because ``max_retries`` was reached."""

    def on_starvation(self, time_with_no_tasks: int) -> None:
        """Called when no task came for ``Starvation.time_with_no_tasks`` seconds."""

    @noop_hook
    def on_stop(self, task: Task) -> None:
        """Called when a task stopped the worker."""


def _check_priority(priority: str) -> None:
    if priority not in ("NORMAL", "HIGH"):
        raise ConfigError(f"priority is {priority!r}; use 'NORMAL' or 'HIGH'")


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)
