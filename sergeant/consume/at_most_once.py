"""The at-most-once loop: 0.27's pop-and-forget, with pops sent ahead (``prefetch``);
an idle worker waits on the broker (``wait_for_items``) instead of sleeping, and on
exit the popped tasks not yet started are pushed back (HIGH priority)."""

from __future__ import annotations

import collections
import typing
from time import monotonic

from sergeant.consume.backoff import RETRYABLE, retry_call
from sergeant.consume.state import ConsumerState
from sergeant.objects import Task

__all__ = ["PopLoop"]


class PopLoop(ConsumerState):
    """The consumer's at-most-once part: pop, hand out, push back what never started."""

    def _popped_tasks(self) -> typing.Iterator[Task]:
        """The tasks of the queue, popped in batches, within ``max_tasks_per_run``."""
        for _tasks, pulled in self._batches(self._pop):
            if self._prefetch_depth:
                self._top_up(pulled, [count for count, _ in self._popping], self._start_pop)
            popped, throttle = self._popped, self._throttle
            while popped:
                if throttle is not None:  # a fresh start permit first (consume.throttle)
                    if throttle.allowed <= 0 or monotonic() > throttle.deadline:
                        throttle.renew(len(popped), throttle.allowed)
                    throttle.allowed -= 1
                yield popped.popleft()

    def _pop(self, count: int) -> list[Task]:
        """The next batch, popped (kept in ``_popped`` until handed out); [] after a wait."""
        queue, config = self.queue, self.config
        popped = self._take_pop()
        throttle = self._throttle
        if not popped:
            if throttle is not None:
                count = throttle.before_pull(count)  # pop no more than may start now
            popped = retry_call("pop", lambda: self.broker.pop_tasks(queue, count), queue)
            if throttle is not None:
                throttle.pulled(len(popped))
        self._popped = collections.deque(popped)
        self._saw_steps()
        if not popped:
            retry_call(
                "wait", lambda: self.broker.wait_for_tasks(queue, config.block_seconds), queue
            )
        return popped

    def _start_pop(self, count: int) -> bool:
        """Send a pop without waiting; False if it could not be sent."""
        try:
            self._popping.append((count, self.broker.start_pop_tasks(self.queue, count)))
        except RETRYABLE as exc:  # the next pop goes the usual way, with retries
            self._prefetch_failed("could not prefetch: %s", exc)
            return False
        return True

    def _take_pop(self) -> list[Task]:
        """The oldest prefetched pop's tasks; [] when none (or it failed: its tasks,
        popped or not, are lost, as with any pop whose reply is lost)."""
        if not self._popping:
            return []
        _, finish = self._popping.popleft()
        try:
            return finish()
        except RETRYABLE as exc:
            self._prefetch_failed("prefetch failed: %s", exc)
            return []

    def _close_popped(self) -> None:
        """Push back the popped tasks never started, those of pops in flight included."""
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
