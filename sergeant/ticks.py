"""The ticks of a ``config.Schedule``, as Unix seconds: pure arithmetic, the same in
every scheduler.

* ``every_seconds``: every multiple of it since the Unix epoch (``k * every_seconds``
  for whole ``k``), so schedulers started at different times agree on every tick.
* ``cron``: the times ``cronsim`` finds for the line in ``Schedule.timezone``, with
  the daylight-saving behaviour of Debian's cron as cronsim implements it: a time
  that does not exist (the spring-forward gap) runs at the first minute after the
  gap, once; in the repeated hour of a fall-back, a line with a fixed hour and
  minute runs once (the first time), and a line whose minute or hour fields are
  wildcards or ranges runs in both passes.
"""

from __future__ import annotations

import datetime
import math
import zoneinfo

import cronsim

from sergeant.config import Schedule

__all__ = ["last_tick", "next_tick", "ticks_between"]


def next_tick(schedule: Schedule, after: float) -> float:
    """The first tick strictly after ``after`` (Unix seconds)."""
    if schedule.every_seconds is not None:
        every = schedule.every_seconds
        step = math.floor(after / every) + 1
        tick = step * every
        while tick <= after:  # float rounding: never give a tick at or before ``after``
            step += 1
            tick = step * every
        return tick
    return next(_cron(schedule, after, reverse=False)).timestamp()


def last_tick(schedule: Schedule, at: float) -> float:
    """The latest tick at or before ``at`` (Unix seconds)."""
    if schedule.every_seconds is not None:
        every = schedule.every_seconds
        step = math.floor(at / every)
        while step * every > at:
            step -= 1
        return step * every
    # cronsim works in whole seconds, going back strictly before its start.
    ticks = _cron(schedule, math.floor(at) + 1, reverse=True)
    for tick in ticks:
        if tick.timestamp() <= at:
            return tick.timestamp()
    raise AssertionError("cronsim ran out of ticks")  # pragma: no cover: it never ends


def ticks_between(schedule: Schedule, start: float, end: float, limit: int = 10_000) -> list[float]:
    """The ticks in ``(start, end]``, in order, at most ``limit`` of them (the first)."""
    found: list[float] = []
    tick = next_tick(schedule, start)
    while tick <= end and len(found) < limit:
        found.append(tick)
        tick = next_tick(schedule, tick)
    return found


def _cron(schedule: Schedule, start: float, reverse: bool) -> cronsim.CronSim:
    assert schedule.cron is not None
    zone = zoneinfo.ZoneInfo(schedule.timezone)
    moment = datetime.datetime.fromtimestamp(start, zone)
    if not reverse:
        # cronsim goes forward from the start's whole second; a start with a fraction is
        # past that second's tick, if any.
        moment = moment.replace(microsecond=0)
    return cronsim.CronSim(schedule.cron, moment, reverse=reverse)
