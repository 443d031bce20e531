"""Start permits of a queue's ``WorkerConfig.rate_limit`` (``Connector.take_starts``).

The broker's window is the rate limit's ``per_seconds`` plus a margin
(:func:`margin_seconds`): a worker starts each permitted task within the margin of
its grant, so any ``per_seconds`` interval of actual starts lies inside one broker
window of grants (see ``docs/concepts/rate-limits.md``). The queue's permit log is
kept under the queue's own name (on Redis: in the queue's hash tag).
"""

from __future__ import annotations

from sergeant.config import RateLimit
from sergeant.connector import Connector

__all__ = ["MARGIN_FRACTION", "MIN_MARGIN_SECONDS", "Permits", "margin_seconds", "window_seconds"]

#: The margin, as a fraction of ``per_seconds``...
MARGIN_FRACTION = 0.05
#: ... and at least this many seconds (a round trip and a hand-out fit in it).
MIN_MARGIN_SECONDS = 0.02


def margin_seconds(limit: RateLimit) -> float:
    """Seconds within which a worker starts a task after asking for its permit."""
    return max(limit.per_seconds * MARGIN_FRACTION, MIN_MARGIN_SECONDS)


def window_seconds(limit: RateLimit) -> float:
    """The broker's window for ``limit``: ``per_seconds`` plus the margin."""
    return limit.per_seconds + margin_seconds(limit)


class Permits:
    """The broker's start permits (``Broker.take_starts``, ``Broker.next_start_in``)."""

    connector: Connector

    def take_starts(self, queue: str, limit: RateLimit, want: int) -> tuple[int, float]:
        """Up to ``want`` starts of ``queue`` under ``limit``, granted now, with the
        seconds until one more start is allowed (0.0 when all were granted)."""
        return self.connector.take_starts(queue, limit.tasks, window_seconds(limit), want)

    def next_start_in(self, queue: str, limit: RateLimit) -> float:
        """Seconds until ``queue`` may start a task under ``limit`` (0.0: now); grants
        nothing."""
        return self.connector.take_starts(queue, limit.tasks, window_seconds(limit), 0)[1]
