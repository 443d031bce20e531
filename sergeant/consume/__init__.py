"""The work loop's source of tasks: pulls batches, keeps leases alive, settles outcomes.

At-least-once (the default): a heartbeat thread renews every lease this worker
holds in one round trip per interval and reclaims the expired leases of dead
workers; the outcomes of a batch are acknowledged together with the lease of the
next batch, in one round trip (``Connector.ack_and_lease``); on exit, settled tasks
are acknowledged and tasks not yet started are released to the head of the queue.
At-most-once: 0.27's pop-and-forget, with unstarted tasks pushed back (HIGH
priority) on exit; an idle worker waits on the broker (``wait_for_items``)
instead of sleeping.

Broker faults: once the loop runs, a lost connection, an unreachable broker or a
full one (``ConnectionLost``, ``BrokerUnavailable``, ``BrokerFull``) during a pull,
an acknowledgement or a dead-lettering is retried with bounded, jittered
exponential backoff (each attempt logged at WARNING as ``broker_retry``, a full
broker once a minute), so a worker rides out a broker restart. The heartbeat's
presence is best effort: a broker that refuses it never stops a worker.
Settled tasks stay held (and renewed) until their acknowledgement is accepted: an
acknowledgement is never dropped while the worker runs. The first broker call at
start is not retried, so an unreachable broker fails the start with one clear error.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
import typing

from sergeant.broker import Broker, Delivery
from sergeant.broker import running as _running
from sergeant.config import WorkerConfig
from sergeant.consume import presence as _presence
from sergeant.consume.at_least_once import LeaseLoop
from sergeant.consume.at_most_once import PopLoop
from sergeant.consume.backoff import RETRYABLE, retry_call
from sergeant.consume.heartbeat import Heartbeat, heartbeat_interval
from sergeant.consume.state import CLOSE_RETRY_SECONDS, CurrentTask, StarvationCallback
from sergeant.consume.steps import end_step
from sergeant.control import Outcome, WorkerCancelled
from sergeant.errors import BrokerFull, ConnectorError
from sergeant.logging import refusals
from sergeant.objects import Task

__all__ = ["CLOSE_RETRY_SECONDS", "Consumer", "CurrentTask", "StarvationCallback", "new_owner_id"]

logger = logging.getLogger("sergeant.consumer")  # the name it had before the move

_MAX_RETRIES = Outcome.MAX_RETRIES  # looked up once: settle() runs per task
_ABORTED = Outcome.ABORTED
_CANCELLED = Outcome.CANCELLED
_SUCCESS = Outcome.SUCCESS


def new_owner_id() -> str:
    """A fresh id for the leases of one work loop: ``host:pid:nonce``.

    The nonce tells apart two workers of one process, and a later process that reuses
    the pid, so one never renews or releases (``Connector.extend_owned``,
    ``release_owned``) the leases of another.
    """
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def _warn_if_leases_can_lapse(config: WorkerConfig) -> None:
    """Without a supervisor only this process renews its leases, and not while a task
    holds the GIL: a lease shorter than the watchdog's deadline can lapse first."""
    timeouts = config.timeouts
    deadline = timeouts.timeout + timeouts.grace_period
    if timeouts.timeout > 0 and config.lease_seconds < deadline:
        logger.warning(
            "lease_seconds (%g) is shorter than timeouts.timeout + timeouts.grace_period "
            "(%g): run without a supervisor, a task holding the GIL can lose its lease and "
            "run twice before the watchdog kills it; raise lease_seconds or run the worker "
            "under the supervisor, which renews its leases",
            config.lease_seconds,
            deadline,
            extra={"event": "lease_can_lapse", "queue": config.name},
        )


class Consumer(LeaseLoop, PopLoop):
    """Iterates the tasks of one queue for the executor, within ``max_tasks_per_run``.

    Its parts, one module each: the shared state (``state``), the
    at-most-once loop (``at_most_once``), the held leases' bookkeeping
    (``lease_book``) and the at-least-once loop (``at_least_once``); here, how a
    task's outcome settles its lease, reclaim, presence and the closing order.

    Args:
        broker: where the tasks come from and are settled.
        config: the worker's configuration.
        on_starvation: called with the idle seconds while no task comes.
        thread_state: where the task running in each thread is kept
            (``thread_state.task``, for ``Worker.get_trace_id``).
        owner: the id its leases are recorded under (see :func:`new_owner_id`).
    """

    def __init__(
        self,
        broker: Broker,
        config: WorkerConfig,
        on_starvation: StarvationCallback | None = None,
        thread_state: threading.local | CurrentTask | None = None,
        owner: str | None = None,
    ) -> None:
        super().__init__(broker, config, on_starvation, thread_state, owner or new_owner_id())
        self._presence_refused = refusals.Throttle()
        #: Ids of the queue's tasks asked to stop (``Worker.cancel``), read each heartbeat.
        self._cancel_ids: frozenset[str] = frozenset()
        #: Stops a running task by id (the executor's ``cancel_running``), if set.
        self.on_cancel_running: typing.Callable[[str], bool] | None = None
        if self.at_least_once and _running.file_path() is None:
            _warn_if_leases_can_lapse(config)

    # -- iteration ------------------------------------------------------------------

    def __iter__(self) -> typing.Iterator[Task]:
        return self._leased_tasks() if self.at_least_once else self._popped_tasks()

    def _begin(self) -> None:
        """Before the first pull: reclaim dead workers' leases, show this worker, and
        start the heartbeat."""
        if self.at_least_once:
            self.reclaim_expired()
            _set_group_limits(self.broker, self.config)
        self._publish_first_presence()
        self._heartbeat = Heartbeat(self)
        self._heartbeat.start()

    # -- outcomes -------------------------------------------------------------------

    def started(self, task: Task) -> None:
        """The executor began running ``task``: it is this thread's current task, and
        the heartbeat shows it."""
        if task.trace_id is None:
            task.trace_id = task.id  # a task pushed from outside roots its own trace
        self.thread_state.task = task
        key = id(task)
        self._current[key] = (task.id, time.time())
        if self._cancel_ids and task.id in self._cancel_ids:
            raise WorkerCancelled(f"task {task.id} was cancelled before it started")
        if self._lean:
            return  # marked as it was handed out (see _leased_tasks)
        delivery = self._running.get(key)
        if delivery is not None:
            record = self._record
            record.start(record.cell_of_this_thread(), delivery)

    def settle(self, task: Task, outcome: Outcome, value: typing.Any = None) -> None:
        """Record how ``task`` ended; its lease is acknowledged (or dead-lettered) in a batch.

        ``value`` (what ``work`` returned or raised) is not kept here.
        """
        self.thread_state.task = None
        self.tasks_done += 1
        # One check on the path of a plain success: the rest only when there is more.
        if (outcome is not _SUCCESS or self.extras) and not self._end_extras(task, outcome, value):
            return
        key = id(task)
        self._current.pop(key, None)
        running = self._running  # empty at-most-once: nothing more to do then
        if outcome is not _MAX_RETRIES and outcome is not _ABORTED:
            delivery = running.get(key)
            if delivery is not None:
                self._to_ack.append(delivery)  # see __init__: enter settled, then leave running
                del running[key]
                if not self._lean:  # lean: the next hand-out replaces the mark (_leased_tasks)
                    self._record.clear(self._record.cell_of_this_thread())
            return
        dead = running.pop(key, None)
        if dead is None:
            return
        if outcome is _ABORTED:
            self._charge_abort(task, dead, value)
            return
        record = self._record
        record.clear(record.cell_of_this_thread())
        self._dead_letter(dead)

    # -- cancelling -------------------------------------------------------------------

    def check_cancels(self) -> None:
        """Read the queue's cancel requests (each heartbeat, and at start): tasks asked
        to stop are not started, and running ones are stopped (``on_cancel_running``)."""
        ids = self.broker.cancel_requests(self.queue)
        self._cancel_ids = ids
        stop = self.on_cancel_running
        if ids and stop is not None:
            for task_id, _ in self._current.copy().values():
                if task_id in ids:
                    stop(task_id)

    def _end_extras(self, task: Task, outcome: Outcome, value: typing.Any) -> bool:
        """What a task's end needs beyond its acknowledgement: a cancelled task's
        result, a workflow step's advance, the last progress value. False when the
        step could not be advanced (it was given back to run again)."""
        if outcome is _CANCELLED:
            self._cancelled(task)
        if task._flow is not None and not end_step(self.broker, self.queue, task, outcome, value):
            self._release_step(task)
            return False
        if self.progress.cells:
            self.progress.finish(task.id)
        return True

    def _cancelled(self, task: Task) -> None:
        """``task`` was cancelled: its result says so (whatever results are kept)."""
        try:
            self.broker.record_cancelled(task.id, None, "cancelled while it ran")
        except ConnectorError as exc:
            logger.warning(
                "could not record that task %s was cancelled: %s", task.id, exc,
                extra={"event": "cancel_record_failed", "queue": self.queue},
            )  # fmt: skip

    def _release_step(self, task: Task) -> None:
        """Give a workflow step whose advance failed back to its queue, to run again."""
        key = id(task)
        self._current.pop(key, None)
        delivery = self._running.pop(key, None)
        if delivery is None:
            return  # at most once: popped, nothing to give back
        if not self._lean:
            self._record.clear(self._record.cell_of_this_thread())
        try:
            self.broker.release(self.queue, [delivery])
        except ConnectorError:
            pass  # its lease expires and it is reclaimed

    def _charge_abort(self, task: Task, delivery: Delivery, exc: BaseException) -> None:
        """``work`` raised ``exc`` (``SystemExit``, ``KeyboardInterrupt``...), which ends
        this worker: charge the delivery to the task now, so it cannot block its queue.

        If the broker stays unreachable the cell stays ``RUNNING``: a supervisor charges
        it when this process has ended; without one the lease expires.
        """
        reason = f"raised {type(exc).__name__}"
        queue, bound = self.queue, self.config.max_deliveries
        try:
            retry_call(
                "charge",
                lambda: self.broker.charge(queue, [delivery], bound, reason, repr(exc)),
                queue,
                CLOSE_RETRY_SECONDS,
            )
        except RETRYABLE as error:
            logger.error(
                "could not charge task %s, which %s: %s",
                task.id,
                reason,
                error,
                extra={"event": "close_step_failed", "operation": "charge", "queue": queue},
            )
            return
        record = self._record
        record.charged(record.cell_of_this_thread())
        logger.error(
            "task %s %s, which ends the worker: delivery %d of %s charged to it",
            task.id,
            reason,
            delivery.deliveries,
            bound or "unbounded",
            extra={"event": "task_aborted_worker", "queue": queue, "reason": reason},
        )

    def _dead_letter(self, delivery: Delivery) -> None:
        queue = self.queue
        retry_call(
            "dead_letter",
            lambda: self.broker.dead_letter(queue, delivery, "max retries", ""),
            queue,
        )

    # -- leases ---------------------------------------------------------------------

    def reclaim_expired(self) -> None:
        """Give dead workers' tasks back to the queue.

        Reclaim never dead-letters here (bound 0): the delivery bound is applied when
        a task is next leased (``Broker.lease_tasks``), where the watchdog's kill note
        tells ``'killed after timeout'`` from ``'worker died'``.
        """
        result = self.broker.reclaim(self.queue, 0)
        if result.requeued:
            logger.warning(
                "reclaimed %d tasks of dead workers (their leases expired)",
                result.requeued,
                extra={"event": "leases_reclaimed", "queue": self.queue},
            )

    # -- presence -------------------------------------------------------------------

    def publish_presence(self) -> None:
        """Publish this worker's heartbeat, alive for a few heartbeat intervals; a full
        broker's refusal is logged once a minute (the worker goes on, unlisted)."""
        ttl = heartbeat_interval(self.config) * _presence.HEARTBEAT_TTL_FACTOR
        info = self.presence.info(
            self.tasks_done, self._current.copy().values(), self.progress.latest
        )
        try:
            self.broker.register_worker(self.presence.worker_id, info, ttl)
        except BrokerFull as exc:
            if self._presence_refused.due():
                logger.warning(
                    "could not publish the worker heartbeat, the broker is full: %s",
                    exc,
                    extra={"event": "heartbeat_failed", "queue": self.queue},
                )

    def _publish_first_presence(self) -> None:
        """The first heartbeat: best effort, so ``sergeant stats`` lists a worker at once
        (the first pull reports an unreachable broker, with retries); a refused one
        never stops the worker."""
        try:
            self.publish_presence()
            self.check_cancels()
        except ConnectorError as exc:
            logger.warning(
                "could not publish the worker heartbeat: %s",
                exc,
                extra={"event": "heartbeat_failed"},
            )

    # -- shutdown -------------------------------------------------------------------

    def close(self) -> None:
        """Stop the heartbeat, acknowledge what is settled, give back what never started.

        Tasks that were running when the loop was interrupted (not settled) are
        released too: they run again, since their outcome is unknown. While the
        broker is unreachable each step is retried for :data:`CLOSE_RETRY_SECONDS`;
        after that it is left to lease expiry (the tasks run again: nothing is lost).
        """
        if self._heartbeat is not None:
            self._heartbeat.stopped.set()
            self._heartbeat.join(timeout=5)
            self._heartbeat = None
            # One attempt: if it fails, the heartbeat simply expires.
            self._on_close(
                "unregister",
                lambda: self.broker.unregister_worker(self.presence.worker_id),
                retry_seconds=0.0,
            )
        if self.at_least_once:
            self._close_leased()
        else:
            self._close_popped()


def _set_group_limits(broker: Broker, config: WorkerConfig) -> None:
    """The per-group bounds of ``WorkerConfig`` (``group_concurrency``,
    ``group_rate_limit``) for this consumer's leases; none set: nothing is sent."""
    rate = config.group_rate_limit
    if config.group_concurrency or rate is not None:
        tasks, seconds = (rate.tasks, rate.per_seconds) if rate is not None else (0, 0.0)
        broker.set_group_limits(config.name, config.group_concurrency, tasks, seconds)
