"""``Worker``: the class users subclass (Sergeant 0.27 API).

Override ``generate_config()`` and ``work(task)``; optionally the hooks. Producers
call ``init_broker()`` then ``push_task``/``push_tasks``; a worker process calls
``init_worker()`` then ``work_loop()`` (the supervisor does both).
"""

from __future__ import annotations

import logging
import sys
import threading
import typing

from sergeant.broker import Broker, Priority, checked_kwargs
from sergeant.broker.results import ResultStore
from sergeant.config import WorkerConfig
from sergeant.consume import CurrentTask, new_owner_id
from sergeant.control import (
    WorkerCancelled,
    WorkerException,
    WorkerInterrupt,
    WorkerMaxRetries,
    WorkerRequeue,
    WorkerRespawn,
    WorkerRetry,
    WorkerStop,
    WorkerTimedout,
)
from sergeant.errors import ConfigError
from sergeant.executor import Executor, SerialExecutor, noop_hook
from sergeant.logging import JsonFormatter
from sergeant.objects import Task
from sergeant.worker.admin import Administering
from sergeant.worker.flows import Workflows
from sergeant.worker.loop import WorkerSummary, WorkLoop
from sergeant.worker.produce import Producing
from sergeant.worker.progress import Reporting

__all__ = [
    "Worker",
    "WorkerCancelled",
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
_LOG_FORMAT = "%(asctime)s %(name)-12s %(process)d %(levelname)-8s %(message)s"


class Worker(WorkLoop, Producing, Administering, Reporting, Workflows):
    """Base class of a Sergeant worker.

    Its producing, administration and loop methods live in mixins, one per concern.

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
        self._consumer = None

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
        self.broker = Broker.from_config(self.config.connector, self.config.encoder)
        self._result_store = self.broker.result_store(self.config.result_ttl_seconds)

    def close(self) -> None:
        """Close the broker's connections (a no-op before ``init_broker``)."""
        broker: Broker | None = getattr(self, "broker", None)
        if broker is not None:
            broker.close()

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
    def on_cancel(self, task: Task) -> None:
        """Called when ``Worker.cancel`` stopped ``task`` (``WorkerCancelled`` was raised
        in it, or it was cancelled before it started)."""

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
