"""Waiting by polling, for brokers (or operations) that cannot wait server-side."""

from __future__ import annotations

import time
import typing

__all__ = ["KEY_POLL_MAX_SECONDS", "WAIT_POLL_FIRST_SECONDS", "WAIT_POLL_MAX_SECONDS", "poll"]

#: First and longest pause, in seconds, of the polling ``Connector.wait_for_items``.
WAIT_POLL_FIRST_SECONDS = 0.002
WAIT_POLL_MAX_SECONDS = 0.05
#: Longest pause, in seconds, of the polling ``Connector.wait_for_key``.
KEY_POLL_MAX_SECONDS = 0.2

_T = typing.TypeVar("_T")


def poll(
    check: typing.Callable[[], _T | None],
    timeout_seconds: float | None,
    first_pause_seconds: float,
    max_pause_seconds: float,
) -> _T | None:
    """Call ``check`` until it returns something other than None, or the time runs out.

    ``check`` runs at least once, even with a timeout of 0. Between calls the pause
    starts at ``first_pause_seconds`` and doubles up to ``max_pause_seconds``, never
    sleeping past the deadline.

    Args:
        check: one attempt; None means "not yet".
        timeout_seconds: how long to keep trying; None tries forever.
        first_pause_seconds: the first pause between attempts.
        max_pause_seconds: the longest pause between attempts.

    Returns:
        The first result that is not None, or None when the time ran out.
    """
    give_up = None if timeout_seconds is None else time.monotonic() + timeout_seconds
    pause = first_pause_seconds
    while True:
        result = check()
        if result is not None:
            return result
        remaining = None if give_up is None else give_up - time.monotonic()
        if remaining is not None and remaining <= 0:
            return None
        time.sleep(pause if remaining is None else min(pause, remaining))
        pause = min(pause * 2, max_pause_seconds)
