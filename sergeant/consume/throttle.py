"""The worker's side of ``WorkerConfig.rate_limit``: start permits from the broker.

Before a pull the loop asks the broker for permits (``Broker.take_starts``), as many
as it expects to start within the margin (:func:`sergeant.broker.permits.margin_seconds`),
and pulls at most that many tasks (after an empty pull: one task, no permit yet).
Each task is handed out only while a permit taken within the margin is left,
counted on this process's monotonic clock from *before* the request was sent; a
task that would start later takes a new permit first. So every start falls within
the margin after its grant, and the broker's window (``per_seconds`` plus the
margin) covers any ``per_seconds`` of starts.

When the broker grants nothing, it says when the next start is allowed: the loop
acknowledges what is settled, then sleeps exactly that long (in short slices, so a
stop request raised in this thread ends the wait at once) and asks again; it never
polls the broker meanwhile. The heartbeat keeps renewing the leases held.
"""

from __future__ import annotations

import logging
import time
import typing

from sergeant.broker import Broker
from sergeant.broker.permits import margin_seconds, window_seconds
from sergeant.config import RateLimit
from sergeant.consume.backoff import retry_call

__all__ = ["SLEEP_SLICE_SECONDS", "Throttle"]

logger = logging.getLogger("sergeant.consumer")

#: Longest single sleep of a throttled wait: how soon a stop raised in the waiting
#: thread (the threaded executor's ``ShutdownRequested``) is seen.
SLEEP_SLICE_SECONDS = 0.05
#: Weight of the newest interval in the average time between two hand-outs.
_SMOOTHING = 0.3


class Throttle:
    """Permits for the starts of one consumer's queue.

    Args:
        broker: where the permits come from.
        queue: the queue.
        limit: its rate limit.
        before_wait: called before each wait for permits (acknowledges settled tasks).
    """

    def __init__(
        self,
        broker: Broker,
        queue: str,
        limit: RateLimit,
        before_wait: typing.Callable[[], None],
    ) -> None:
        self.broker = broker
        self.queue = queue
        self.limit = limit
        self.margin = margin_seconds(limit)
        self.window = window_seconds(limit)
        self._before_wait = before_wait
        #: Permits left, and the monotonic time by which they must be used.
        self.allowed = 0
        self.deadline = 0.0
        #: Average monotonic seconds between two hand-outs (None: not measured yet),
        #: measured over each grant's permits: how many were used, and how long since.
        self.interval: float | None = None
        self._granted = 0
        self._granted_at = 0.0
        self.throttled = False
        self._idle = False  # the last pull brought nothing
        self._last_wait = 0.0
        self.waits = 0

    def want(self, most: int) -> int:
        """How many permits to ask for: the starts expected within the margin, from 1
        to ``most``."""
        interval = self.interval
        if interval is None or most <= 1:
            return 1
        return max(1, min(most, 1 + int(self.margin / max(interval, 1e-9))))

    def acquire(self, most: int) -> int:
        """Wait until the broker grants at least one start; the number granted (at most
        :meth:`want` of ``most``), usable until :attr:`deadline`."""
        self._measure()
        want = self.want(most)
        sent = 0.0

        def take() -> tuple[int, float]:
            nonlocal sent
            sent = time.monotonic()
            return self.broker.take_starts(self.queue, self.limit, want)

        while True:
            granted, retry = retry_call("rate_limit", take, self.queue)
            if granted:
                self.allowed, self.deadline = granted, sent + self.margin
                self._granted, self._granted_at = granted, time.monotonic()
                if granted == want:
                    self._maybe_free()
                return granted
            self._wait(retry)

    def renew(self, remaining: int, allowed: int) -> tuple[int, float]:
        """Fresh permits for the next hand-outs: ``(allowed, deadline)``.

        The loop keeps its permits in locals and calls this only when none is left
        or the deadline has passed (``allowed``: what it had left;
        ``remaining``: tasks of the batch not yet handed out, the next one included).
        """
        self.allowed = allowed
        while True:
            self.acquire(remaining)
            if time.monotonic() <= self.deadline:
                return self.allowed, self.deadline

    def _measure(self) -> None:
        """Before asking again: the time per hand-out over the last grant's permits."""
        used = self._granted - self.allowed
        if used > 0:
            gap = (time.monotonic() - self._granted_at) / used
            average = self.interval
            self.interval = gap if average is None else average + _SMOOTHING * (gap - average)
        self._granted = self.allowed = 0

    def report(self) -> dict[str, typing.Any]:
        """The heartbeat's fields (see ``consume.presence``): the limit, and whether
        this worker is throttled now."""
        limit = {"tasks": self.limit.tasks, "per_seconds": self.limit.per_seconds}
        return {"rate_limit": limit, "throttled": self.throttled}

    def before_pull(self, most: int) -> int:
        """How many tasks the next pull may take (of ``most``), permits taken for them.

        After an empty pull the queue is idle: the next pull takes one task and no
        permit (an empty pull would spend it, and a strict limit would then make the
        next task wait a whole window); that task takes its permit before it starts.
        """
        if self._idle:
            self.allowed = 0
            return 1
        return self.acquire(most)

    def pulled(self, leased: int) -> None:
        """The pull brought ``leased`` tasks; permits it does not use lapse."""
        self._idle = not leased
        if not leased:
            self.allowed = 0
            self.interval = None  # an idle queue: ask for one permit at a time again

    def _wait(self, seconds: float) -> None:
        if not self.throttled:
            self.throttled = True
            logger.info(
                "queue %s is throttled by its rate limit (%d tasks per %gs): tasks wait "
                "for their start in the broker",
                self.queue,
                self.limit.tasks,
                self.limit.per_seconds,
                extra={"event": "rate_limited", "queue": self.queue},
            )
        self.waits += 1
        self._before_wait()
        until = time.monotonic() + max(seconds, 0.001)
        while (left := until - time.monotonic()) > 0:
            time.sleep(min(left, SLEEP_SLICE_SECONDS))
        self._last_wait = time.monotonic()

    def _maybe_free(self) -> None:
        """A full grant: once none had to wait for a whole window, say it is free."""
        if self.throttled and time.monotonic() - self._last_wait > self.window:
            self.throttled = False
            logger.info(
                "queue %s is no longer throttled by its rate limit",
                self.queue,
                extra={"event": "rate_limit_free", "queue": self.queue},
            )
