"""Task starts allowed per window, across every worker of a queue: what
``WorkerConfig.rate_limit`` needs (see ``docs/concepts/rate-limits.md``).

The broker keeps, per key, a sliding-window log of grants, one entry (its broker
time, its count) per call that granted anything, not per task: the log stays small
and one round trip buys a whole batch of starts.
"""

from __future__ import annotations

__all__ = ["PermitsContract"]


class PermitsContract:
    """Start permits of a sliding window, granted in one atomic step."""

    def take_starts(
        self, key: str, tasks: int, window_seconds: float, want: int
    ) -> tuple[int, float]:
        """Grant up to ``want`` starts now under ``key``, so that no window of
        ``window_seconds`` holds grants of more than ``tasks`` starts.

        In one atomic step: drop the grants older than the window, grant
        ``g = min(want, tasks - starts granted in the last window_seconds)`` (at least 0)
        stamped now, and work out when the next start fits. ``want`` 0 is a read: it
        grants and records nothing. The clock is the Redis server's (``TIME``) on
        Redis, the caller's ``time.time()`` on SQLite and MongoDB.

        Returns:
            ``(g, retry_seconds)``: ``retry_seconds`` is 0.0 when ``g == want > 0``,
            or when a start is allowed now (``want`` 0); otherwise the seconds until at
            least one more start is allowed.

        Raises:
            ValueError: ``tasks`` below 1, ``window_seconds`` not above 0, or ``want``
                below 0.
        """
        raise NotImplementedError(f"{type(self).__name__} does not keep start permits")
