"""The at-least-once bookkeeping of held leases: which settled ones are acknowledged
(and when the broker took them), the pulls sent ahead and read, renewal of every
held lease, and the give-back of prefetched tasks while a long task stalls the loop.

Settled tasks stay held (and renewed) until their acknowledgement is accepted: an
acknowledgement is never dropped while the worker runs.
"""

from __future__ import annotations

import collections
import logging
import time

from sergeant.broker import Delivery, LeasedBatch
from sergeant.consume import prefetch as _prefetch
from sergeant.consume.backoff import RETRYABLE, retry_call
from sergeant.consume.prefetch import PendingPull
from sergeant.consume.state import ConsumerState
from sergeant.objects import Task

__all__ = ["LeaseBook"]

logger = logging.getLogger("sergeant.consumer")


class LeaseBook(ConsumerState):
    """The consumer's held leases: acknowledged, prefetched, renewed, given back."""

    # -- acknowledgements -------------------------------------------------------------

    def _acks_to_send(self) -> list[Delivery]:
        """The settled leases to acknowledge now (call it under ``_flush_lock``)."""
        return list(self._to_ack)

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

    # -- pulls sent ahead -------------------------------------------------------------

    def _arrived(self, batch: LeasedBatch) -> list[Task]:
        """A leased batch came: its leases become the unstarted ones; its tasks are next."""
        self._unstarted = collections.deque(batch.deliveries)
        self._saw_steps()
        return batch.tasks

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

    # -- held leases --------------------------------------------------------------------

    def held_deliveries(self) -> list[Delivery]:
        """Every lease this worker still holds (safe from any thread, see ``ConsumerState``)."""
        # Read first: _take_prefetch fills _unstarted, then drops the pull.
        prefetched = [delivery for pending in list(self._prefetched) for delivery in pending.held()]
        held = [*prefetched, *self._unstarted, *self._running.copy().values(), *self._to_ack]
        return list({id(delivery): delivery for delivery in held}.values())  # once each

    def renew_leases(self) -> None:
        """Extend every held lease in one round trip (a prefetch is read first, so its
        leases are renewed too)."""
        for pending in list(self._prefetched):
            pending.resolve()
        held = self.held_deliveries()
        if held:
            self.broker.extend(self.queue, held, self.config.lease_seconds)

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
