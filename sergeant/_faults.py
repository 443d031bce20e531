"""Test-only crash points: ``SERGEANT_FAULT=<point>`` makes a worker SIGKILL itself there.

The variable is read once, at import. When it is unset :data:`FAULT` is None and
callers test that constant before calling :func:`crash_if`, so the hooks cost
nothing in production. The points are named after the step of the work loop they
follow or precede:

* ``after_lease``: a batch was leased, nothing of it ran yet;
* ``before_ack``: tasks ran and were settled, their acknowledgement not yet sent;
* ``after_ack``: the acknowledgement was accepted by the broker.
"""

from __future__ import annotations

import os
import signal
import typing

__all__ = ["FAULT", "POINTS", "crash_if"]

Point = typing.Literal["after_lease", "before_ack", "after_ack"]

#: The crash points a test may name.
POINTS: tuple[Point, ...] = ("after_lease", "before_ack", "after_ack")


def _read() -> str | None:
    value = os.environ.get("SERGEANT_FAULT") or None
    if value is not None and value not in POINTS:
        raise RuntimeError(f"SERGEANT_FAULT is {value!r}; use one of {', '.join(POINTS)}")
    return value


#: The crash point of this process, or None (the normal case).
FAULT: str | None = _read()


def crash_if(point: Point) -> None:
    """SIGKILL this process at once if ``point`` is the configured crash point."""
    if point == FAULT:
        os.kill(os.getpid(), signal.SIGKILL)
