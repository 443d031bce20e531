"""Crash points: ``SERGEANT_FAULT=<point>`` makes a fault-suite worker SIGKILL itself there.

The production ``Consumer`` has no crash hooks; :class:`CrashingConsumer` adds them
by overriding the steps they follow or precede, and ``FaultWorker`` uses it only
when the variable is set. The points:

* ``after_lease``: a batch was leased, nothing of it ran yet;
* ``before_ack``: tasks ran and were settled, their acknowledgement not yet sent;
* ``after_ack``: the acknowledgement was accepted by the broker.
"""

from __future__ import annotations

import os
import signal
import typing

from sergeant.broker import LeasedBatch
from sergeant.connector import Delivery
from sergeant.consume import Consumer
from sergeant.objects import Task

__all__ = ["FAULT", "POINTS", "CrashingConsumer", "crash_if"]

Point = typing.Literal["after_lease", "before_ack", "after_ack"]

#: The crash points a test may name.
POINTS: tuple[Point, ...] = ("after_lease", "before_ack", "after_ack")


def _read() -> str | None:
    value = os.environ.get("SERGEANT_FAULT") or None
    if value is not None and value not in POINTS:
        raise RuntimeError(f"SERGEANT_FAULT is {value!r}; use one of {', '.join(POINTS)}")
    return value


#: The crash point of this process, or None.
FAULT: str | None = _read()


def crash_if(point: Point) -> None:
    """SIGKILL this process at once if ``point`` is the configured crash point."""
    if point == FAULT:
        os.kill(os.getpid(), signal.SIGKILL)


class CrashingConsumer(Consumer):
    """A ``Consumer`` that stops dead at the configured crash point."""

    def _acks_to_send(self) -> list[Delivery]:
        to_ack = super()._acks_to_send()
        if to_ack:
            crash_if("before_ack")
        return to_ack

    def _arrived(self, batch: LeasedBatch) -> list[Task]:
        if batch.tasks:
            crash_if("after_lease")
        return super()._arrived(batch)

    def _acknowledged(self, sent: list[Delivery], accepted: int) -> None:
        super()._acknowledged(sent, accepted)
        if sent:
            crash_if("after_ack")
