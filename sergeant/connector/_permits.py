"""The sliding-window log of task starts behind ``Connector.take_starts``, for the
engines that compute it in Python inside their atomic step (memory, SQLite, MongoDB).

A log is a list of ``(at, count)`` grants, ``at`` on the engine's clock. A grant
counts while ``at > now - window``; entries stamped after ``now`` (another client's
clock ahead of this one) count too, so a skew only makes the limit stricter here.
"""

from __future__ import annotations

import typing

__all__ = ["Grant", "check", "grant", "until_free"]


class Grant(typing.NamedTuple):
    """The outcome of one :func:`grant`: the log to keep, what was granted, the wait."""

    log: list[tuple[float, int]]
    granted: int
    retry_seconds: float


def check(tasks: int, window_seconds: float, want: int) -> None:
    """Raise ``ValueError`` unless the arguments of ``take_starts`` make sense."""
    if tasks < 1 or not window_seconds > 0 or want < 0:
        raise ValueError(
            f"take_starts got tasks={tasks!r}, window_seconds={window_seconds!r}, "
            f"want={want!r}; give tasks >= 1, window_seconds > 0 and want >= 0"
        )


def until_free(
    log: typing.Sequence[tuple[float, int]], tasks: int, now: float, window: float
) -> float:
    """Seconds from ``now`` until the grants of ``log`` (all live) leave room for one
    more start: the oldest ones expire first."""
    used = sum(count for _, count in log)
    if used < tasks:
        return 0.0
    for at, count in sorted(log):
        used -= count
        if used < tasks:
            return max(at + window - now, 0.0)
    return 0.0  # unreachable: the sum of all counts is 0 after the last entry


def grant(
    log: typing.Iterable[tuple[float, int]],
    now: float,
    tasks: int,
    window: float,
    want: int,
) -> Grant:
    """Grant up to ``want`` starts at ``now`` so the window holds at most ``tasks``."""
    live = [(at, count) for at, count in log if at > now - window]
    used = sum(count for _, count in live)
    granted = max(0, min(want, tasks - used))
    if granted:
        live.append((now, granted))
    retry = 0.0 if granted == want and want else until_free(live, tasks, now, window)
    return Grant(live, granted, retry)
