"""The at-least-once loop: leases batches (the last batch's acknowledgements go with
the next lease, one round trip, ``Connector.ack_and_lease``), marks the running
task for the supervisor, and on exit acknowledges what is settled and releases the
rest (unstarted, interrupted, prefetched) to the head of the queue."""

from __future__ import annotations

import collections
import typing

from sergeant.broker import running as _running
from sergeant.consume.backoff import retry_call
from sergeant.consume.lease_book import LeaseBook
from sergeant.consume.state import CLOSE_RETRY_SECONDS
from sergeant.objects import Task

__all__ = ["LeaseLoop"]

_MARK = _running.MARK


class LeaseLoop(LeaseBook):
    """The consumer's at-least-once part: lease, hand out, give back on exit."""

    def _leased_tasks(self) -> typing.Iterator[Task]:
        """The tasks of the queue, leased in batches, within ``max_tasks_per_run``."""
        for tasks, pulled in self._batches(self._lease):
            if self._prefetch_depth:
                # The next batches' pulls go now, so the broker's work and the round
                # trips overlap this batch; they carry the last batches' acknowledgements.
                asked = [pending.count for pending in list(self._prefetched)]  # a copy: see
                self._top_up(pulled, asked, self._start_prefetch)  # unblock_if_stalled
            unstarted, running = self._unstarted, self._running
            words, field = self._record.batch_marks(unstarted[0] if unstarted else None)
            self._batch_ids.note(tasks, unstarted)
            for task in tasks:
                delivery = running[id(task)] = unstarted[0]  # see ConsumerState: enter
                unstarted.popleft()  # running, then leave
                # It starts now. The one-thread executor asks for the next task only once
                # this one is settled: the next mark (or the clear below) replaces it.
                words[_MARK] = delivery[field]  # type: ignore[assignment]
                yield task
            words[_MARK] = 0  # the batch is settled: nothing runs while the next is pulled

    def _lease(self, count: int) -> list[Task]:
        """The next batch, leased (its deliveries in ``_unstarted``)."""
        prefetched = self._take_prefetch()
        if prefetched:
            return prefetched
        queue, config = self.queue, self.config
        with self._flush_lock:
            # A pull still in flight that carries acknowledgements removes them (the
            # first of _to_ack) when it is read: then this lease carries none (a pull
            # that came back empty is followed by this one while later pulls fly).
            carrying = any(pending.sent for pending in self._prefetched)
            to_ack = [] if carrying else self._acks_to_send()
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

    def _close_leased(self) -> None:
        """Acknowledge what is settled; release the unstarted, interrupted and
        prefetched tasks, and any lease a pull cut off by the stop still holds."""
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
            lambda: self.broker.release_owned(queue, owner),
            retry_seconds=0.0,
        )
        self._record.clear_running()
        self._batch_ids.close()
