"""Schedules without processes: the tick arithmetic (intervals, cron in a time zone
across daylight-saving changes), the scheduler's catch-up and skip rules on an
in-memory broker at chosen times, and a tick's task encoding its ``scheduled_for``."""

from __future__ import annotations

import datetime
import typing
import zoneinfo

import pytest

from sergeant import ticks
from sergeant.broker import Broker
from sergeant.config import Connector, Schedule, WorkerConfig
from sergeant.connector import create
from sergeant.encoder import Encoder
from sergeant.errors import ConfigError
from sergeant.objects import Task
from sergeant.process.scheduler import LATE_SECONDS, Scheduler

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
UTC = datetime.timezone.utc


def utc(*fields: int) -> float:
    return datetime.datetime(*fields, tzinfo=UTC).timestamp()  # type: ignore[misc, arg-type]


def berlin(*fields: int, fold: int = 0) -> float:
    return datetime.datetime(*fields, tzinfo=BERLIN, fold=fold).timestamp()  # type: ignore[misc, arg-type]


# -- tick arithmetic -------------------------------------------------------------------


def test_every_seconds_ticks_at_multiples_since_the_epoch() -> None:
    schedule = Schedule(every_seconds=30)
    assert ticks.next_tick(schedule, 95.0) == 120.0
    assert ticks.next_tick(schedule, 120.0) == 150.0  # strictly after
    assert ticks.last_tick(schedule, 120.0) == 120.0  # at or before
    assert ticks.last_tick(schedule, 149.9) == 120.0
    assert ticks.ticks_between(schedule, 100.0, 200.0) == [120.0, 150.0, 180.0]
    fractional = Schedule(every_seconds=1.5)
    assert ticks.ticks_between(fractional, 0.0, 6.0) == [1.5, 3.0, 4.5, 6.0]


def test_schedulers_started_apart_agree_on_every_tick() -> None:
    schedule = Schedule(every_seconds=7)
    one = ticks.ticks_between(schedule, 1_000.3, 2_000.0)
    other = ticks.ticks_between(schedule, 1_003.9, 2_000.0)
    assert one[1:] == other
    assert all(tick % 7 == 0 for tick in one)


def test_cron_reads_its_time_zone() -> None:
    schedule = Schedule(cron="0 9 * * *", timezone="Europe/Berlin")
    # 09:00 in Berlin is 08:00 UTC in winter, 07:00 UTC in summer.
    assert ticks.next_tick(schedule, utc(2026, 1, 10)) == utc(2026, 1, 10, 8)
    assert ticks.next_tick(schedule, utc(2026, 7, 10)) == utc(2026, 7, 10, 7)


def test_cron_spring_forward_runs_a_skipped_time_once_after_the_gap() -> None:
    """2026-03-29: Berlin jumps from 02:00 to 03:00; a 02:30 job runs at 03:00 that day."""
    schedule = Schedule(cron="30 2 * * *", timezone="Europe/Berlin")
    found = ticks.ticks_between(schedule, berlin(2026, 3, 28), berlin(2026, 3, 31))
    assert found == [
        berlin(2026, 3, 28, 2, 30),
        berlin(2026, 3, 29, 3, 0),
        berlin(2026, 3, 30, 2, 30),
    ]


def test_cron_fall_back_runs_a_fixed_time_once_and_a_wildcard_in_both_passes() -> None:
    """2026-10-25: Berlin's 02:00-03:00 happens twice (CEST, then CET)."""
    fixed = Schedule(cron="30 2 * * *", timezone="Europe/Berlin")
    day = ticks.ticks_between(fixed, berlin(2026, 10, 25), berlin(2026, 10, 26))
    assert day == [berlin(2026, 10, 25, 2, 30)]  # the first pass only
    assert day == [utc(2026, 10, 25, 0, 30)]
    wildcard = Schedule(cron="*/30 * * * *", timezone="Europe/Berlin")
    hour = ticks.ticks_between(wildcard, utc(2026, 10, 24, 23, 59), utc(2026, 10, 25, 1, 31))
    # 02:00 and 02:30 CEST, then 02:00 and 02:30 CET: every 30 minutes in real time.
    assert hour == [
        utc(2026, 10, 25, 0),
        utc(2026, 10, 25, 0, 30),
        utc(2026, 10, 25, 1),
        utc(2026, 10, 25, 1, 30),
    ]
    assert hour[2] == berlin(2026, 10, 25, 2, 0, fold=1)


def test_cron_last_tick_is_at_or_before() -> None:
    schedule = Schedule(cron="*/5 * * * *")
    assert ticks.last_tick(schedule, utc(2026, 5, 1, 12, 5)) == utc(2026, 5, 1, 12, 5)
    assert ticks.last_tick(schedule, utc(2026, 5, 1, 12, 9, 59) + 0.5) == utc(2026, 5, 1, 12, 5)
    assert ticks.next_tick(schedule, utc(2026, 5, 1, 12, 5) + 0.5) == utc(2026, 5, 1, 12, 10)


@pytest.mark.parametrize(
    ("cron", "why"),
    [
        ("61 * * * *", "Bad minute"),
        ("* 25 * * *", "Bad hour"),
        ("* * 32 * *", "Bad day-of-month"),
        ("* * *", "Wrong number of fields"),
    ],
)
def test_invalid_cron_fails_at_config_time_naming_the_field(cron: str, why: str) -> None:
    with pytest.raises(ConfigError) as info:
        Schedule(cron=cron)
    assert str(info.value).startswith(f"Schedule.cron is {cron!r}")
    assert why in str(info.value)


def test_a_bad_time_zone_fails_at_config_time() -> None:
    with pytest.raises(ConfigError, match=r"Schedule\.timezone"):
        Schedule(cron="* * * * *", timezone="Mars/Olympus")


# -- the scheduler at chosen times ------------------------------------------------------


@pytest.fixture
def broker(memory_name: str) -> typing.Iterator[Broker]:
    broker = Broker(create("memory", {"name": memory_name}), Encoder())
    yield broker
    broker.connector.close()


def pushed(broker: Broker) -> list[float | None]:
    return sorted(
        (task.scheduled_for for task in broker.pop_tasks("q", 1000)), key=lambda t: t or 0
    )


def test_a_missed_tick_is_skipped_without_catch_up(broker: Broker) -> None:
    hourly = Schedule(every_seconds=3600, kwargs={"k": 1})
    Scheduler(broker, "q", [hourly]).begin(10 * 3600 + 1800)
    assert pushed(broker) == []


def test_catch_up_pushes_the_latest_missed_tick_once(broker: Broker) -> None:
    hourly = Schedule(every_seconds=3600, kwargs={"k": 1}, catch_up_seconds=7200)
    now = 10 * 3600 + 1800  # two ticks missed within the window: only the latest goes
    Scheduler(broker, "q", [hourly]).begin(now)
    Scheduler(broker, "q", [hourly]).begin(now + 60)  # a second scheduler: not again
    tasks = broker.pop_tasks("q", 10)
    assert [(t.scheduled_for, t.kwargs) for t in tasks] == [(10 * 3600.0, {"k": 1})]


def test_catch_up_does_not_reach_beyond_its_window(broker: Broker) -> None:
    hourly = Schedule(every_seconds=3600, catch_up_seconds=600)
    Scheduler(broker, "q", [hourly]).begin(10 * 3600 + 1800)
    assert pushed(broker) == []


def test_a_stalled_scheduler_skips_late_ticks_and_pushes_the_recent_one(broker: Broker) -> None:
    minutely = Schedule(every_seconds=60)
    scheduler = Scheduler(broker, "q", [minutely])
    scheduler.begin(6000.5)  # the tick of 6000 is 0.5 s old: pushed
    scheduler.step(6601.0)  # stalled 10 minutes: 6060..6540 skipped, 6600 is 1 s late
    assert pushed(broker) == [6000.0, 6600.0]
    wake = scheduler.step(6601.0)
    assert 6601.0 < wake <= 6660.0


def test_ticks_within_late_seconds_are_pushed_at_start(broker: Broker) -> None:
    every = Schedule(every_seconds=1)
    Scheduler(broker, "q", [every]).begin(100.0 + LATE_SECONDS - 0.5)
    assert pushed(broker) == [100.0, 101.0, 102.0, 103.0, 104.0]


def test_several_schedulers_push_each_tick_once(broker: Broker) -> None:
    every = Schedule(every_seconds=10, kwargs={"n": 1}, priority="HIGH")
    cron = Schedule(cron="* * * * *", kwargs={"c": 1})
    schedulers = [Scheduler(broker, "q", [every, cron]) for _ in range(3)]
    start = 60_000.0
    for scheduler in schedulers:
        scheduler.begin(start)
    for second in range(1, 181):
        for scheduler in schedulers:
            scheduler.step(start + second + 0.25)
    tasks = broker.pop_tasks("q", 1000)
    by_kind = sorted((next(iter(t.kwargs)), t.scheduled_for) for t in tasks)
    expected = [("c", start + m * 60) for m in range(4)]
    expected += [("n", start + s) for s in range(0, 181, 10)]
    assert by_kind == sorted(expected)


def test_records_name_the_last_and_next_tick(broker: Broker) -> None:
    every = Schedule(every_seconds=60, name="minutely")
    scheduler = Scheduler(broker, "q", [every])
    scheduler.begin(6000.5)
    (record,) = broker.schedule_records()
    assert record["schedule"] == "minutely"
    assert record["what"] == "every 60s"
    assert (record["last_tick"], record["next_tick"]) == (6000.0, 6060.0)
    assert broker.schedule_records("other-queue") == []


def test_a_worker_config_takes_schedules() -> None:
    config = WorkerConfig(
        name="reports",
        connector=Connector(type="memory", params={}),
        schedules=[Schedule(every_seconds=30), Schedule(cron="*/5 * * * *")],
    )
    assert len(config.schedules) == 2


# -- the task of a tick -------------------------------------------------------------------


@pytest.mark.parametrize("serializer", ["pickle", "msgpack", "json"])
def test_scheduled_for_survives_encoding(serializer: str) -> None:
    encoder = Encoder(serializer)
    task = encoder.decode(encoder.encode(Task(kwargs={"a": 1}, scheduled_for=120.0)))
    assert (task.kwargs, task.scheduled_for, task._flow) == ({"a": 1}, 120.0, None)
    plain = encoder.decode(encoder.encode(Task(kwargs={"a": 1})))
    assert plain.scheduled_for is None
    assert encoder.steps_decoded == 0


@pytest.mark.parametrize("serializer", ["pickle", "msgpack", "json"])
def test_a_scheduled_task_is_peeked_with_its_tick(serializer: str) -> None:
    """``sergeant dead show`` reads a dead scheduled task without decoding code."""
    from sergeant.encoder.peek import peek

    encoder = Encoder(serializer)
    seen = peek(encoder.encode(Task(kwargs={"a": 1}, scheduled_for=120.0)), encoder)
    assert seen.task is not None
    assert (seen.task.kwargs, seen.task.scheduled_for) == ({"a": 1}, 120.0)


def test_the_metrics_gauges_show_each_schedule(broker: Broker) -> None:
    from sergeant.ops.metrics_server import schedule_gauges

    Scheduler(broker, "q", [Schedule(every_seconds=60, name="minutely")]).begin(6000.5)
    gauges = {family.name: family.samples for family in schedule_gauges(broker, "q")}
    (last,) = gauges["sergeant_schedule_last_tick_seconds"]
    (following,) = gauges["sergeant_schedule_next_tick_seconds"]
    assert last.labels == {"queue": "q", "schedule": "minutely"}
    assert (last.value, following.value) == (6000.0, 6060.0)
