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

import collections
import logging
import os
import secrets
import socket
import threading
import time
import typing

from sergeant import _full, _prefetch, _presence, _running
from sergeant._backoff import RETRYABLE, retry_call
from sergeant._heartbeat import Heartbeat, heartbeat_interval
from sergeant._prefetch import PendingPull, pulls_ahead
from sergeant.broker import Broker, LeasedBatch
from sergeant.config import WorkerConfig
from sergeant.connector import Delivery
from sergeant.control import Outcome
from sergeant.errors import BrokerFull, ConnectorError
from sergeant.objects import Task

__all__ = ["Consumer", "CurrentTask", "StarvationCallback", "new_owner_id"]

logger = logging.getLogger(__name__)

StarvationCallback = typing.Callable[[int], None]

_MAX_RETRIES = Outcome.MAX_RETRIES  # looked up once: settle() runs per task
_ABORTED = Outcome.ABORTED
_MARK = _running.MARK

#: Seconds ``close()`` keeps retrying acknowledgements and releases while the broker is
#: unreachable; after that their leases simply expire and the tasks run again.
CLOSE_RETRY_SECONDS = 5.0


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


class CurrentTask:
    """Where a one-thread worker keeps its running task: a slot, not a
    ``threading.local``, whose two writes per task cost more."""

    __slots__ = ("task",)

    def __init__(self) -> None:
        self.task: Task | None = None


class Consumer:
    """Iterates the tasks of one queue for the executor, within ``max_tasks_per_run``.

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
        self.broker = broker
        self.config = config
        self.queue = config.name
        self.at_least_once = config.delivery == "at_least_once"
        self.owner = owner or new_owner_id()
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
        self._prefetch_depth = pulls_ahead(broker.connector, config)
        self._progress = (0, time.monotonic())  # (tasks_done, when it last moved)
        self._heartbeat: Heartbeat | None = None
        self.presence = _presence.Presence(self.queue)
        self._presence_refused = _full.Throttle()
        # Where the supervisor finds the running task if this process dies; the lean
        # form (one thread) is written here, one store per task (see _running).
        self._record = _running.RunningRecord(
            config.number_of_threads, broker.connector.names_running_by
        )
        self._lean = self._record.lean
        if self.at_least_once and _running.file_path() is None:
            _warn_if_leases_can_lapse(config)

    # -- iteration ------------------------------------------------------------------

    def __iter__(self) -> typing.Iterator[Task]:
        if self.at_least_once:
            self.reclaim_expired()
        self._publish_first_presence()
        self._heartbeat = Heartbeat(self)
        self._heartbeat.start()
        limit = self.config.max_tasks_per_run
        pulled = 0
        idle_since = time.monotonic()
        while limit == 0 or pulled < limit:
            want = self.config.tasks_per_transaction
            if limit:
                want = min(want, limit - pulled)
            tasks = self._pull(want)
            if not tasks:
                self._starving(idle_since)
                continue
            pulled += len(tasks)
            idle_since = time.monotonic()
            if not self.at_least_once:
                self._pop_ahead(pulled)
                popped = self._popped
                while popped:
                    yield popped.popleft()
                continue
            if self._prefetch_depth:
                # The next batches' pulls go now, so the broker's work and the round
                # trips overlap this batch; they carry the last batches' acknowledgements.
                asked = [pending.count for pending in list(self._prefetched)]  # a copy: see
                self._top_up(pulled, asked, self._start_prefetch)  # unblock_if_stalled
            unstarted, running = self._unstarted, self._running
            words, field = self._record.batch_marks(unstarted[0] if unstarted else None)
            for task in tasks:
                delivery = running[id(task)] = unstarted[0]  # see __init__: enter running,
                unstarted.popleft()  # then leave
                # It starts now. The one-thread executor asks for the next task only once
                # this one is settled: the next mark (or the clear below) replaces it.
                words[_MARK] = delivery[field]  # type: ignore[assignment]
                yield task
            words[_MARK] = 0  # the batch is settled: nothing runs while the next is pulled

    def _pop_ahead(self, pulled: int) -> None:
        """At-most-once: send pops ahead up to ``prefetch``."""
        if self._prefetch_depth:
            self._top_up(pulled, [count for count, _ in self._popping], self._start_pop)

    def _pull(self, count: int) -> list[Task]:
        """The next batch: leased (its deliveries in ``_unstarted``) or, at-most-once, popped."""
        queue, config = self.queue, self.config
        if not self.at_least_once:
            popped = self._take_pop()
            if not popped:
                popped = retry_call("pop", lambda: self.broker.pop_tasks(queue, count), queue)
            self._popped = collections.deque(popped)
            if not popped:
                retry_call(
                    "wait", lambda: self.broker.wait_for_tasks(queue, config.block_seconds), queue
                )
            return popped
        prefetched = self._take_prefetch()
        if prefetched:
            return prefetched
        with self._flush_lock:
            to_ack = self._acks_to_send()
            # The settled tasks' acknowledgements go with the next lease: one round trip.
            # Until it is accepted they stay in _to_ack, held and renewed (also when retried).
            accepted, batch = retry_call(
                "lease",
                lambda: self.broker.ack_and_lease_tasks(
                    queue,
                    to_ack,
                    count,
                    self.owner,
                    config.lease_seconds,
                    config.block_seconds,
                    config.max_deliveries,
                ),
                queue,
            )
            self._acknowledged(to_ack, accepted)
        return self._arrived(batch)

    def _acks_to_send(self) -> list[Delivery]:
        """The settled leases to acknowledge now (call it under ``_flush_lock``)."""
        return list(self._to_ack)

    def _arrived(self, batch: LeasedBatch) -> list[Task]:
        """A leased batch came: its leases become the unstarted ones; its tasks are next."""
        self._unstarted = collections.deque(batch.deliveries)
        return batch.tasks

    def _top_up(self, pulled: int, asked: list[int], send: typing.Callable[[int], bool]) -> None:
        """Send pulls ahead until ``prefetch`` are in flight, within ``max_tasks_per_run``.

        Args:
            pulled: tasks received so far.
            asked: how many tasks each pull in flight asked for.
            send: sends one pull for that many tasks; False if it could not.
        """
        limit, per_pull = self.config.max_tasks_per_run, self.config.tasks_per_transaction
        while len(asked) < self._prefetch_depth:
            count = min(per_pull, limit - pulled - sum(asked)) if limit else per_pull
            if count <= 0 or not send(count):
                return
            asked.append(count)

    def _prefetch_failed(self, message: str, exc: BaseException) -> None:
        """Log a pull sent ahead that could not be sent or read (the loop goes on)."""
        logger.warning(message, exc, extra={"event": "broker_retry", "queue": self.queue})

    def _start_prefetch(self, count: int) -> bool:
        """Send a pull without waiting: False if it could not be sent.

        It carries the acknowledgements settled so far, unless an earlier pull in
        flight carries some: those are the first of ``_to_ack``, removed when it is
        read, so only one pull at a time may carry any.
        """
        queue, config = self.queue, self.config
        with self._flush_lock:
            carrying = any(pending.sent for pending in self._prefetched)
            to_ack = [] if carrying else self._acks_to_send()
            try:
                finish = self.broker.start_ack_and_lease_tasks(
                    queue, to_ack, count, self.owner, config.lease_seconds, config.max_deliveries
                )
            except RETRYABLE as exc:  # the next pull goes the usual way, with retries
                self._prefetch_failed("could not prefetch: %s", exc)
                return False
            self._prefetched.append(PendingPull(to_ack, count, finish))
            return True

    def _start_pop(self, count: int) -> bool:
        """At-most-once: send a pop without waiting; False if it could not be sent."""
        try:
            self._popping.append((count, self.broker.start_pop_tasks(self.queue, count)))
        except RETRYABLE as exc:  # the next pop goes the usual way, with retries
            self._prefetch_failed("could not prefetch: %s", exc)
            return False
        return True

    def _take_pop(self) -> list[Task]:
        """At-most-once: the oldest prefetched pop's tasks; [] when none (or it failed:
        its tasks, popped or not, are lost, as with any pop whose reply is lost)."""
        if not self._popping:
            return []
        _, finish = self._popping.popleft()
        try:
            return finish()
        except RETRYABLE as exc:
            self._prefetch_failed("prefetch failed: %s", exc)
            return []

    def _take_prefetch(self) -> list[Task]:
        """The oldest prefetched batch's tasks, now unstarted; [] when there is none (or
        it failed)."""
        try:
            pending = self._prefetched[0]
        except IndexError:
            return []
        pending.resolve()
        tasks: list[Task] = []
        with self._flush_lock:
            if not self._prefetched or self._prefetched[0] is not pending:
                return []  # given back meanwhile (see unblock_if_stalled)
            if pending.batch is not None:
                self._acknowledged(pending.sent, pending.accepted)
                tasks = self._arrived(pending.batch)
            # Its leases are in _unstarted now (see held_deliveries).
            self._prefetched.popleft()
        if pending.error is not None:
            self._prefetch_failed("prefetch failed: %s", pending.error)
            if not isinstance(pending.error, RETRYABLE):
                raise pending.error
        return tasks

    def _starving(self, idle_since: float) -> None:
        starvation = self.config.starvation
        if starvation is None or self.on_starvation is None:
            return
        idle = int(time.monotonic() - idle_since)
        if idle >= starvation.time_with_no_tasks:
            self.on_starvation(idle)

    # -- outcomes -------------------------------------------------------------------

    def started(self, task: Task) -> None:
        """The executor began running ``task``: it is this thread's current task, and
        the heartbeat shows it."""
        if task.trace_id is None:
            task.trace_id = task.id  # a task pushed from outside roots its own trace
        self.thread_state.task = task
        key = id(task)
        self._current[key] = (task.id, time.time())
        if self._lean:
            return  # marked as it was handed out (see __iter__)
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
        key = id(task)
        self._current.pop(key, None)
        running = self._running  # empty at-most-once: nothing more to do then
        if outcome is not _MAX_RETRIES and outcome is not _ABORTED:
            delivery = running.get(key)
            if delivery is not None:
                self._to_ack.append(delivery)  # see __init__: enter settled, then leave running
                del running[key]
                if not self._lean:  # lean: the next hand-out replaces the mark (__iter__)
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

    def flush_acks(self, give_up_after_seconds: float | None = None) -> None:
        """Acknowledge every settled task in one round trip, retrying on broker faults.

        The settled leases stay held (the heartbeat renews them) until the broker
        accepts the acknowledgement; acknowledging twice is harmless.

        Args:
            give_up_after_seconds: stop retrying after this long and re-raise
                (None: retry until it succeeds).

        Raises:
            ConnectionLost, BrokerUnavailable: only when giving up.
        """
        with self._flush_lock:
            to_ack = self._acks_to_send()
            if not to_ack:
                return
            queue = self.queue
            accepted = retry_call(
                "ack", lambda: self.broker.ack(queue, to_ack), queue, give_up_after_seconds
            )
            self._acknowledged(to_ack, accepted)

    def _acknowledged(self, sent: list[Delivery], accepted: int) -> None:
        """The broker took the acknowledgement of ``sent``: they are no longer held."""
        if not sent:
            return
        del self._to_ack[: len(sent)]  # settle() only appends: the sent ones are still first
        if accepted < len(sent):
            logger.warning(
                "%d of %d acknowledgements were rejected: their leases had expired and the "
                "tasks were handed out again (this worker was paused or cut off too long)",
                len(sent) - accepted,
                len(sent),
                extra={"event": "stale_ack", "queue": self.queue},
            )

    # -- leases ---------------------------------------------------------------------

    def held_deliveries(self) -> list[Delivery]:
        """Every lease this worker still holds (safe from any thread, see ``__init__``)."""
        # Read first: _take_prefetch fills _unstarted, then drops the pull.
        prefetched = [delivery for pending in list(self._prefetched) for delivery in pending.held()]
        held = [*prefetched, *self._unstarted, *self._running.copy().values(), *self._to_ack]
        return list({id(delivery): delivery for delivery in held}.values())  # once each

    def unblock_if_stalled(self) -> None:
        """When the loop has finished no task for ``_prefetch.PATIENCE_SECONDS`` while
        tasks run, give the prefetched tasks back to the queue (for idle workers) and
        acknowledge the settled ones (so a crash now cannot run them again); the
        heartbeat calls this. The loop pulls again when it is free; on a broker
        error the leases stay held, as they were."""
        done, now = self.tasks_done, time.monotonic()
        if done != self._progress[0] or not self._current:
            self._progress = (done, now)  # moving, or pulling: not stuck in a task
            return
        stuck = now - self._progress[1] >= _prefetch.PATIENCE_SECONDS
        if not stuck or not (self._prefetched or self._to_ack):
            return
        if not self._flush_lock.acquire(blocking=False):
            return  # the loop is pulling
        try:
            given = self._give_back_prefetched()
            # A pull still in flight (one that failed, and those after it) may carry
            # acknowledgements it removes when read: leave them all to the loop then.
            to_ack = [] if self._prefetched else self._acks_to_send()
            if to_ack:
                self._acknowledged(to_ack, self.broker.ack(self.queue, to_ack))
        finally:
            self._flush_lock.release()
            self._progress = (done, now)  # next look (or retry) in PATIENCE_SECONDS
        if given:
            logger.info(
                "gave back %d prefetched tasks: no task finished for %.1fs",
                given,
                _prefetch.PATIENCE_SECONDS,
                extra={"event": "prefetch_given_back", "queue": self.queue},
            )

    def _give_back_prefetched(self) -> int:
        """Release the tasks of the pulls in flight (call under ``_flush_lock``); how many."""
        given: list[PendingPull] = []
        for pending in list(self._prefetched):
            pending.resolve()
            if pending.batch is None:
                break  # it failed: the loop reports it when it gets there
            given.append(pending)
        leases = [delivery for pending in given for delivery in pending.held()]
        if leases:
            self.broker.release(self.queue, leases)
        for pending in given:  # released: the loop must not run them
            self._acknowledged(pending.sent, pending.accepted)
            self._prefetched.popleft()
        return len(leases)

    def renew_leases(self) -> None:
        """Extend every held lease in one round trip (a prefetch is read first, so its
        leases are renewed too)."""
        for pending in list(self._prefetched):
            pending.resolve()
        held = self.held_deliveries()
        if held:
            self.broker.extend(self.queue, held, self.config.lease_seconds)

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
        info = self.presence.info(self.tasks_done, self._current.copy().values())
        try:
            self.broker.connector.register_worker(self.presence.worker_id, info, ttl)
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
                lambda: self.broker.connector.unregister_worker(self.presence.worker_id),
                retry_seconds=0.0,
            )
        if not self.at_least_once:
            unstarted, self._popped = list(self._popped), collections.deque()
            while self._popping:
                unstarted += self._take_pop()
            if unstarted:
                # One attempt: a push retried after a lost reply could run twice.
                self._on_close(
                    "push_back",
                    lambda: self.broker.push_tasks(self.queue, unstarted, priority="HIGH"),
                    retry_seconds=0.0,
                )
            return
        give_back = [*self._unstarted, *self._running.values()]
        while self._prefetched:  # each pull's leases become the unstarted ones in turn
            self._unstarted = collections.deque()
            self._on_close("prefetch", self._take_prefetch)
            give_back += self._unstarted
        self._on_close("ack", lambda: self.flush_acks(CLOSE_RETRY_SECONDS))
        self._unstarted, self._running = collections.deque(), {}
        if give_back:
            self._on_close("release", lambda: self.broker.release(self.queue, give_back))
        # A pull cut off by the stop (its reply never read) still holds leases: the
        # broker knows them by owner.
        queue, owner = self.queue, self.owner
        self._on_close(
            "release",
            lambda: self.broker.connector.release_owned(queue, owner),
            retry_seconds=0.0,
        )
        self._record.clear_running()

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
