"""The time and flow control parts of a ``WorkerConfig``: ``Schedule`` and ``RateLimit``.

Re-exported by ``sergeant.config``; validated at construction like the rest of it (a
wrong value raises ``ConfigError`` naming the field, the value and what is accepted).
Cron text is parsed by ``cronsim`` (see the README's design notes), time zones by the
standard ``zoneinfo``.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import typing
import zoneinfo

import cronsim
import orjson

from sergeant._config_checks import check_choice, check_number, check_type, fail

__all__ = ["MIN_EVERY_SECONDS", "RateLimit", "Schedule"]

#: Shortest ``Schedule.every_seconds``.
MIN_EVERY_SECONDS = 1.0
_PRIORITIES = ("NORMAL", "HIGH")
_CRON_FIELDS = "minute hour day-of-month month day-of-week"


@dataclasses.dataclass(frozen=True)
class RateLimit:
    """At most ``tasks`` task starts in any interval of ``per_seconds``.

    Attributes:
        tasks: starts allowed per interval (1 or more).
        per_seconds: the interval's length, in seconds (more than 0).
    """

    tasks: int
    per_seconds: float = 1.0

    def __post_init__(self) -> None:
        check_number("RateLimit.tasks", self.tasks, 1, integer=True)
        check_number("RateLimit.per_seconds", self.per_seconds, 0)
        if not self.per_seconds > 0:
            fail("RateLimit.per_seconds", self.per_seconds, "use a number of seconds above 0")


@dataclasses.dataclass(frozen=True)
class Schedule:
    """A task pushed to the worker's queue at every tick of a cron line or interval.

    Every scheduler of the worker (each supervisor, ``sergeant run``, ``sergeant
    schedule``) computes the same ticks, and the broker stores each tick's task once.

    Attributes:
        cron: five cron fields (minute hour day-of-month month day-of-week), read in
            ``timezone``; or None with ``every_seconds``.
        every_seconds: an interval instead of cron: ticks at every multiple of it
            since the Unix epoch (at least 1 second).
        kwargs: the pushed task's kwargs.
        timezone: an IANA zone name (``Europe/Berlin``) for ``cron``.
        priority: ``'NORMAL'`` or ``'HIGH'``.
        catch_up_seconds: at start, push once the latest tick missed within this many
            seconds (0: a tick missed while no scheduler ran is skipped).
        name: names the schedule in the broker and in ``sergeant schedules``; by
            default one is made of the other fields (changing them starts a new
            schedule).
    """

    cron: str | None = None
    every_seconds: float | None = None
    kwargs: dict[str, typing.Any] = dataclasses.field(default_factory=dict)
    timezone: str = "UTC"
    priority: typing.Literal["NORMAL", "HIGH"] = "NORMAL"
    catch_up_seconds: float = 0.0
    name: str | None = None

    def __post_init__(self) -> None:
        if (self.cron is None) == (self.every_seconds is None):
            fail(
                "Schedule",
                f"cron={self.cron!r}, every_seconds={self.every_seconds!r}",
                "give exactly one of cron='*/5 * * * *' or every_seconds=30",
            )
        if self.cron is not None:
            check_type(
                "Schedule.cron", self.cron, str, f"a cron line of five fields: {_CRON_FIELDS}"
            )
            try:
                cronsim.CronSim(self.cron, datetime.datetime(2000, 1, 1))
            except cronsim.CronSimError as exc:
                fail("Schedule.cron", self.cron, f"five cron fields ({_CRON_FIELDS}): {exc}")
        if self.every_seconds is not None:
            check_number("Schedule.every_seconds", self.every_seconds, MIN_EVERY_SECONDS)
        check_type("Schedule.kwargs", self.kwargs, dict, "a dict of the task's kwargs")
        check_type("Schedule.timezone", self.timezone, str, "an IANA time zone name")
        try:
            zoneinfo.ZoneInfo(self.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            fail("Schedule.timezone", self.timezone, "an IANA time zone name, like 'Europe/Berlin'")
        check_choice("Schedule.priority", self.priority, _PRIORITIES)
        check_number("Schedule.catch_up_seconds", self.catch_up_seconds, 0)
        if self.name is not None and (not isinstance(self.name, str) or not self.name):
            fail("Schedule.name", self.name, "a non-empty string, or None for a made-up one")

    @property
    def id(self) -> str:
        """The schedule's name: ``name``, or one made of its fields (stable across runs)."""
        if self.name is not None:
            return self.name
        what = f"cron {self.cron} {self.timezone}" if self.cron else f"every {self.every_seconds}s"
        try:
            body = orjson.dumps(self.kwargs, option=orjson.OPT_SORT_KEYS)
        except TypeError:
            body = repr(sorted(self.kwargs.items())).encode()
        return f"{what} {hashlib.sha1(body).hexdigest()[:10]}"


def check_flow(
    schedules: object,
    rate_limit: object,
    group_concurrency: object,
    group_rate_limit: object,
    delivery: str,
) -> None:
    """Validate the ``WorkerConfig`` fields of this module's classes."""
    if not isinstance(schedules, (list, tuple)) or not all(
        isinstance(s, Schedule) for s in schedules
    ):
        fail("WorkerConfig.schedules", schedules, "a list of Schedule(...)")
    names = [schedule.id for schedule in schedules]
    if len(set(names)) != len(names):
        fail("WorkerConfig.schedules", names, "schedules with distinct names (give name=...)")
    for field, value in (("rate_limit", rate_limit), ("group_rate_limit", group_rate_limit)):
        if value is not None:
            check_type(f"WorkerConfig.{field}", value, RateLimit, "a RateLimit(...) or None")
    check_number("WorkerConfig.group_concurrency", group_concurrency, 0, integer=True)
    if (group_concurrency or group_rate_limit is not None) and delivery != "at_least_once":
        fail(
            "WorkerConfig.delivery",
            delivery,
            "'at_least_once' with group_concurrency or group_rate_limit (a group's slot "
            "is held by a lease, which at_most_once does not take)",
        )
