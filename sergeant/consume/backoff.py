"""Bounded exponential backoff with jitter, for retrying broker calls that lost their connection.

Only :class:`~sergeant.errors.ConnectionLost`,
:class:`~sergeant.errors.BrokerUnavailable` and :class:`~sergeant.errors.BrokerFull`
are retried: the broker could not be reached, the connection broke (a restart of
the broker causes both), or the broker had no room (draining makes it); time
cures them. Every other error is a bug or a refusal and propagates.

Failures are logged as a state of the process, not per attempt: the first failed
call at WARNING, then at most one line a minute while calls keep failing (with the
attempt count and the failures so far), and one line when a call goes through
again. A full broker is logged once a minute as well.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import typing

from sergeant.errors import BrokerFull, BrokerUnavailable, ConnectionLost
from sergeant.logging.refusals import Throttle

__all__ = ["RETRYABLE", "Backoff", "Outage", "retry_call"]

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


class Outage:
    """The failed broker calls of this process since it last reached the broker."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._throttle = Throttle()
        #: Failed attempts since the broker last answered (0: it answers).
        self.failures = 0

    def failed(
        self, operation: str, queue: str, attempt: int, exc: Exception, delay: float
    ) -> None:
        """One attempt failed: logged if it is the first, or a minute has passed."""
        with self._lock:
            self.failures += 1
            failures, due = self.failures, self._throttle.due()
        if due:
            _log_retry(operation, queue, attempt, exc, delay, failures)

    def recovered(self, operation: str, queue: str) -> None:
        """A call went through after failures: logged once."""
        with self._lock:
            failures, self.failures = self.failures, 0
            self._throttle = Throttle()
        if failures:  # at the failure's level, so whoever saw it sees its end
            logger.warning(
                "broker call %r succeeded again after %d failed attempts",
                operation,
                failures,
                extra={"event": "broker_back", "operation": operation, "queue": queue},
            )


_OUTAGE = Outage()


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
            result = call()
        except RETRYABLE as exc:
            if backoff is None:
                backoff = Backoff()
            delay = backoff.next_delay()
            elapsed = time.monotonic() - started
            if give_up_after_seconds is not None and elapsed + delay > give_up_after_seconds:
                raise
            _note_failure(operation, queue, backoff.failures, exc, delay)
            if stop is not None:
                if stop.wait(delay):
                    raise
            else:
                time.sleep(delay)
        else:
            if backoff is not None:
                _OUTAGE.recovered(operation, queue)
            return result


def _note_failure(operation: str, queue: str, attempt: int, exc: Exception, delay: float) -> None:
    if not isinstance(exc, BrokerFull):
        _OUTAGE.failed(operation, queue, attempt, exc, delay)
    elif _FULL_LOG.due():
        _log_retry(operation, queue, attempt, exc, delay, attempt)


def _log_retry(
    operation: str, queue: str, attempt: int, exc: Exception, delay: float, failures: int
) -> None:
    logger.warning(
        "broker call %r failed (attempt %d; %d failed attempts in this process so far): %s; "
        "retrying in %.2fs (logged again once a minute while it fails)",
        operation,
        attempt,
        failures,
        exc,
        delay,
        extra={"event": "broker_retry", "operation": operation, "queue": queue},
    )
