"""Bounded exponential backoff with jitter, for retrying broker calls that lost their connection.

Only :class:`~sergeant.errors.ConnectionLost`,
:class:`~sergeant.errors.BrokerUnavailable` and :class:`~sergeant.errors.BrokerFull`
are retried: the broker could not be reached, the connection broke (a restart of
the broker causes both), or the broker had no room (draining makes it); time
cures them. Every other error is a bug or a refusal and propagates. A full broker
is logged once a minute, not at every attempt.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import typing

from sergeant._full import Throttle
from sergeant.errors import BrokerFull, BrokerUnavailable, ConnectionLost

__all__ = ["RETRYABLE", "Backoff", "retry_call"]

logger = logging.getLogger(__name__)

#: Errors that a later attempt of the same call may not meet.
RETRYABLE = (ConnectionLost, BrokerUnavailable, BrokerFull)
#: Delay (seconds) before the first retry; it doubles with every failure in a row.
DEFAULT_FIRST_DELAY_SECONDS = 0.05
#: Longest delay (seconds) between two attempts, so a worker notices a broker back soon.
DEFAULT_MAX_DELAY_SECONDS = 2.0

T = typing.TypeVar("T")

# Retries refused by a full broker, logged at most once a minute in this process.
_FULL_LOG = Throttle()


class Backoff:
    """The delays of successive retries: doubling from ``first`` up to ``cap``, jittered.

    Each delay is drawn uniformly from the upper half of the current step ("equal
    jitter"), so workers cut off together do not hammer the broker together when
    it comes back, and no delay is ever near zero.

    Args:
        first_seconds: the first step.
        max_seconds: the largest step.
        rng: the random source (seeded in tests).
    """

    def __init__(
        self,
        first_seconds: float = DEFAULT_FIRST_DELAY_SECONDS,
        max_seconds: float = DEFAULT_MAX_DELAY_SECONDS,
        rng: random.Random | None = None,
    ) -> None:
        self.first_seconds = first_seconds
        self.max_seconds = max_seconds
        self.failures = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        """Count one more failure and return the seconds to wait before the next attempt."""
        step = min(self.max_seconds, self.first_seconds * 2.0 ** min(self.failures, 32))
        self.failures += 1
        return step / 2 + self._rng.uniform(0, step / 2)

    def reset(self) -> None:
        """Forget the failures: the next delay is short again."""
        self.failures = 0


def retry_call(
    operation: str,
    call: typing.Callable[[], T],
    queue: str,
    give_up_after_seconds: float | None = None,
    stop: threading.Event | None = None,
) -> T:
    """Run ``call`` until it does not raise a retryable error, waiting with :class:`Backoff`.

    Each failed attempt is logged at WARNING with ``extra={"event": "broker_retry"}``
    (refusals of a full broker at most once a minute).

    Args:
        operation: what ``call`` does, for the log (``'lease'``, ``'ack'``, ...).
        call: the broker call.
        queue: the queue it acts on, for the log.
        give_up_after_seconds: re-raise the last error once this much time has
            passed; None retries until it succeeds.
        stop: when set, waiting ends early and the last error is re-raised.

    Raises:
        ConnectionLost, BrokerUnavailable, BrokerFull: only when giving up (see above).
    """
    backoff: Backoff | None = None  # built at the first failure: its Random seeds from urandom
    started = time.monotonic()
    while True:
        try:
            return call()
        except RETRYABLE as exc:
            if backoff is None:
                backoff = Backoff()
            delay = backoff.next_delay()
            elapsed = time.monotonic() - started
            if give_up_after_seconds is not None and elapsed + delay > give_up_after_seconds:
                raise
            if not isinstance(exc, BrokerFull) or _FULL_LOG.due():
                _log_retry(operation, queue, backoff.failures, exc, delay)
            if stop is not None:
                if stop.wait(delay):
                    raise
            else:
                time.sleep(delay)


def _log_retry(operation: str, queue: str, attempt: int, exc: Exception, delay: float) -> None:
    logger.warning(
        "broker call %r failed (attempt %d): %s; retrying in %.2fs",
        operation,
        attempt,
        exc,
        delay,
        extra={"event": "broker_retry", "operation": operation, "queue": queue},
    )
