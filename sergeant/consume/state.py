"""What every part of the consumer shares: the leases held in their stages, the
pulls in flight, and the steps both delivery modes use (top-up, close step).

``Consumer`` is composed of this base and one mixin per responsibility
(``at_most_once``, ``lease_book``, ``at_least_once``); they live in one object,
so the per-task path reads plain attributes, as before the split.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
import typing

from sergeant.broker import Broker, Delivery
from sergeant.broker import running as _running
from sergeant.broker.progress import progress_ttl
from sergeant.broker.running_ids import BatchIds
from sergeant.config import WorkerConfig
from sergeant.consume.backoff import RETRYABLE, retry_call
from sergeant.consume.heartbeat import Heartbeat
from sergeant.consume.prefetch import PendingPull, pulls_ahead
from sergeant.consume.presence import Presence
from sergeant.consume.progress import ProgressBook
from sergeant.consume.throttle import Throttle
from sergeant.objects import Task

__all__ = ["CLOSE_RETRY_SECONDS", "ConsumerState", "CurrentTask", "StarvationCallback"]

logger = logging.getLogger("sergeant.consumer")

StarvationCallback = typing.Callable[[int], None]

#: Seconds ``close()`` keeps retrying acknowledgements and releases while the broker is
#: unreachable; after that their leases simply expire and the tasks run again.
CLOSE_RETRY_SECONDS = 5.0


class CurrentTask:
    """Where a one-thread worker keeps its running task: a slot, not a
    ``threading.local``, whose two writes per task cost more."""

    __slots__ = ("task",)

    def __init__(self) -> None:
        self.task: Task | None = None


class ConsumerState:
    """The consumer's state, and the helpers its parts share (see the module doc)."""

    def __init__(
        self,
        broker: Broker,
        config: WorkerConfig,
        on_starvation: StarvationCallback | None,
        thread_state: threading.local | CurrentTask | None,
        owner: str,
    ) -> None:
        self.broker = broker
        self.config = config
        self.queue = config.name
        self.at_least_once = config.delivery == "at_least_once"
        self.owner = owner
        self.on_starvation = on_starvation
        self.thread_state = thread_state if thread_state is not None else threading.local()
        self.tasks_done = 0
        # The leases held move through three stages, one GIL-atomic container each:
        # unstarted (in batch order) -> running (by id(task)) -> settled, kept (and
        # renewed) until the broker accepts their acknowledgement. A lease enters its
        # next stage before it leaves the last one, and held_deliveries() reads the
        # stages in that order, so a snapshot from any thread misses none: no lock
        # per task.
        self._unstarted: collections.deque[Delivery] = collections.deque()
        self._running: dict[int, Delivery] = {}
        self._to_ack: list[Delivery] = []
        self._flush_lock = threading.Lock()
        # The heartbeat's running tasks: (task id, Unix start), by id(task) (GIL-atomic).
        self._current: dict[int, tuple[str, float]] = {}
        self._popped: collections.deque[Task] = collections.deque()  # at-most-once: unstarted
        # At-most-once: pops in flight (prefetch), oldest first: (count asked, finish).
        self._popping: collections.deque[tuple[int, typing.Callable[[], list[Task]]]] = (
            collections.deque()
        )
        # Pulls in flight, oldest first; read in that order.
        self._prefetched: collections.deque[PendingPull] = collections.deque()
        self._prefetch_depth = pulls_ahead(broker, config)
        self._progress = (0, time.monotonic())  # (tasks_done, when it last moved)
        self._heartbeat: Heartbeat | None = None
        self.presence = Presence(self.queue)
        #: The running tasks' ``Worker.set_progress`` values (see ``consume.progress``).
        #: True once a task may need more than an acknowledgement at its end (a
        #: workflow step was handed out, or a task reported progress): ``settle``
        #: looks further only then, so plain tasks pay one check.
        self.extras = False
        self.progress = ProgressBook(
            broker, progress_ttl(config.result_ttl_seconds), self._need_extras
        )
        # Where the supervisor finds the running task if this process dies; the lean
        # form (one thread) is written here, one store per task (see broker.running).
        self._record = _running.RunningRecord(config.number_of_threads, broker.names_running_by)
        self._lean = self._record.lean
        #: The batch's task ids for the supervisor (see broker.running_ids): per batch.
        self._batch_ids = BatchIds(self._record.form)
        #: Start permits of ``config.rate_limit`` (set by ``Consumer``), or None.
        self._throttle: Throttle | None = None

    def _begin(self) -> None:
        """What the loop does before its first pull (``Consumer`` defines it)."""
        raise NotImplementedError

    def _batches(
        self, pull: typing.Callable[[int], list[Task]]
    ) -> typing.Iterator[tuple[list[Task], int]]:
        """Each batch ``pull`` gives, with the running total, within
        ``max_tasks_per_run``; while none comes, ``on_starvation`` hears of it."""
        self._begin()
        limit = self.config.max_tasks_per_run
        pulled = 0
        idle_since = time.monotonic()
        while limit == 0 or pulled < limit:
            want = self.config.tasks_per_transaction
            if limit:
                want = min(want, limit - pulled)
            tasks = pull(want)
            if not tasks:
                self._starving(idle_since)
                continue
            pulled += len(tasks)
            idle_since = time.monotonic()
            yield tasks, pulled

    def _starving(self, idle_since: float) -> None:
        starvation = self.config.starvation
        if starvation is None or self.on_starvation is None:
            return
        idle = int(time.monotonic() - idle_since)
        if idle >= starvation.time_with_no_tasks:
            self.on_starvation(idle)

    def _top_up(self, pulled: int, asked: list[int], send: typing.Callable[[int], bool]) -> None:
        """Send pulls ahead until ``prefetch`` are in flight, within ``max_tasks_per_run``.

        Args:
            pulled: tasks received so far.
            asked: how many tasks each pull in flight asked for.
            send: sends one pull for that many tasks; False if it could not.
        """
        limit, per_pull = self.config.max_tasks_per_run, self.config.tasks_per_transaction
        if len(asked) >= self._prefetch_depth:
            return
        with self.broker.pulls_together():  # pulls sent at once go in one write
            while len(asked) < self._prefetch_depth:
                count = min(per_pull, limit - pulled - sum(asked)) if limit else per_pull
                if count <= 0 or not send(count):
                    return
                asked.append(count)

    def _need_extras(self) -> None:
        self.extras = True

    def _saw_steps(self) -> None:
        """After a batch arrived: from the first workflow step on, settle looks further."""
        if not self.extras and self.broker.steps_seen:
            self.extras = True

    def _prefetch_failed(self, message: str, exc: BaseException) -> None:
        """Log a pull sent ahead that could not be sent or read (the loop goes on)."""
        logger.warning(message, exc, extra={"event": "broker_retry", "queue": self.queue})

    def _on_close(
        self,
        operation: str,
        call: typing.Callable[[], object],
        retry_seconds: float = CLOSE_RETRY_SECONDS,
    ) -> None:
        """Run one closing step, retried for a while; log (not raise) if the broker stays away."""
        try:
            retry_call(operation, call, self.queue, retry_seconds)
        except RETRYABLE as exc:
            logger.error(
                "could not %s on exit, the broker is unreachable or full (%s); leased "
                "tasks run again once their leases expire",
                operation,
                exc,
                extra={"event": "close_step_failed", "operation": operation, "queue": self.queue},
            )
