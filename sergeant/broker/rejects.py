"""Tasks refused as they arrive (bad signature, undecodable), logged as a rate.

Whoever can write to a broker can push a million bad payloads; one error line each
would bury every other line. The first of each kind per queue is logged at once,
then at most one line a minute, saying how many were refused since the last one.
"""

from __future__ import annotations

import logging
import threading

from sergeant.logging.refusals import Throttle

__all__ = ["RejectLog"]


class RejectLog:
    """Rate-limited error lines, one stream per ``(queue, event)``.

    Args:
        logger: where the lines go.
    """

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger
        self._lock = threading.Lock()
        self._throttles: dict[tuple[str, str], Throttle] = {}
        self._unlogged: dict[tuple[str, str], int] = {}

    def report(self, queue: str, event: str, message: str, *args: object) -> None:
        """Log ``message % args`` (event ``event``) if due, else count it for the next line."""
        key = (queue, event)
        with self._lock:
            throttle = self._throttles.get(key)
            if throttle is None:
                throttle = self._throttles[key] = Throttle()
            if not throttle.due():
                self._unlogged[key] = self._unlogged.get(key, 0) + 1
                return
            more = self._unlogged.pop(key, 0)
        suffix = f" ({more} more like it since the last such line)" if more else ""
        self._logger.error(
            message + "%s", *args, suffix, extra={"event": event, "queue": queue, "unlogged": more}
        )
