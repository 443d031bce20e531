"""What a worker's heartbeat reports: its running tasks and the tasks done in the last minute."""

from __future__ import annotations

import orjson

from sergeant.consume.presence import PROGRESS_MESSAGE_MAX_CHARS, Presence


def test_running_tasks_and_the_current_one() -> None:
    """The task running the longest is the current one."""
    presence = Presence("q")
    info = orjson.loads(presence.info(3, [("second", 20.0), ("first", 10.0)]))
    assert (info["running"], info["current_task_id"], info["current_task_since"]) == (
        2,
        "first",
        10.0,
    )
    assert (info["queue"], info["tasks_done"]) == ("q", 3)
    info = orjson.loads(presence.info(3, []))
    assert (info["running"], info["current_task_id"], info["current_task_since"]) == (0, None, None)


def test_the_current_tasks_progress_with_a_short_message() -> None:
    """The current task's latest progress rides along, its message cut short; else null."""
    presence = Presence("q")
    latest = {"first": (0.25, "x" * 1_000), "second": (0.5, None)}
    info = orjson.loads(presence.info(0, [("second", 20.0), ("first", 10.0)], latest.get))
    assert info["current_task_progress"] == {
        "fraction": 0.25,
        "message": "x" * PROGRESS_MESSAGE_MAX_CHARS,
    }
    info = orjson.loads(presence.info(0, [("second", 20.0)], latest.get))
    assert info["current_task_progress"] == {"fraction": 0.5, "message": None}
    info = orjson.loads(presence.info(0, [("third", 20.0)], latest.get))
    assert info["current_task_progress"] is None
    assert orjson.loads(presence.info(0, [], latest.get))["current_task_progress"] is None


def test_done_last_minute_from_the_heartbeats_samples() -> None:
    """Exact while the worker is younger than a minute, then the growth over the last 60 s."""
    presence = Presence("q")
    start = presence._samples[0][0]
    assert presence._done_last_minute(start + 10, 7) == 7
    for second in range(15, 125, 5):  # one task a second, a beat every 5 s
        done = second
        last_minute = presence._done_last_minute(start + second, done)
    assert last_minute == 60
    assert len(presence._samples) <= 14  # only the last minute's samples are kept
    assert presence._done_last_minute(start + 128, 128) == 60  # between two samples
    assert presence._done_last_minute(start + 400, 128) == 0  # idle for long: nothing
