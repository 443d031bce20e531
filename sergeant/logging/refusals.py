"""What is logged while a broker is full: a line when it starts, then one a minute.

A full broker refuses every push, and a producer or a worker may meet that
thousands of times a second: logging each refusal would flood the logs when they
matter most. :class:`Refusals` logs the first refusal at WARNING, then at most
one line per :data:`REPORT_SECONDS` with the count since the last line, and one
line at INFO when the broker takes writes again. :class:`Throttle` is the bare
"at most once a minute" for callers that only retry.
"""

from __future__ import annotations

import logging
import threading
import time

from sergeant.errors import BrokerFull

__all__ = ["REPORT_SECONDS", "Refusals", "Throttle"]

#: Shortest pause, in seconds, between two log lines about one full broker.
REPORT_SECONDS = 60.0


class Throttle:
    """Says yes at the first call, then at most once per ``seconds``; thread-safe."""

    def __init__(self, seconds: float = REPORT_SECONDS) -> None:
        self.seconds = seconds
        self._next = 0.0
        self._lock = threading.Lock()

    def due(self) -> bool:
        """True when a line may be logged now (and the next one waits ``seconds``)."""
        now = time.monotonic()
        with self._lock:
            if now < self._next:
                return False
            self._next = now + self.seconds
            return True


class Refusals:
    """The pushes a full broker refused, logged as a state, not per call.

    Args:
        logger: where the lines go.
        broker: names the broker in the lines (``'Redis at 127.0.0.1:6379'``).
    """

    def __init__(self, logger: logging.Logger, broker: str) -> None:
        self._logger = logger
        self._broker = broker
        self._throttle = Throttle()
        self._lock = threading.Lock()
        #: Refusals since the broker was last seen taking a push (0: not full).
        self.count = 0
        self._unreported = 0

    def refused(self, exc: BrokerFull) -> None:
        """One push was refused; log it if it is the first, or a minute has passed."""
        with self._lock:
            self.count += 1
            self._unreported += 1
            if not self._throttle.due():
                return
            first, refused = self.count == 1, self._unreported
            self._unreported = 0
        if first:
            message = "the broker is full: %s (logged again once a minute while it refuses)"
            self._logger.warning(message, exc, extra={"event": "broker_full"})
            return
        self._logger.warning(
            "%s is still full: %d pushes refused in the last %.0f s (%d since it filled)",
            self._broker,
            refused,
            self._throttle.seconds,
            self.count,
            extra={"event": "broker_full", "refused": refused},
        )

    def accepted(self) -> None:
        """A push was taken after refusals: the broker has room again (log it once)."""
        with self._lock:
            refused, self.count, self._unreported = self.count, 0, 0
            self._throttle = Throttle()
        if refused:
            self._logger.info(
                "%s takes pushes again (%d were refused while it was full)",
                self._broker,
                refused,
                extra={"event": "broker_not_full", "refused": refused},
            )
