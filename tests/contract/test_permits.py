"""``take_starts``, run against every broker set-up: never more than ``tasks`` starts
granted per window (also under concurrent callers), the retry time says when the
next start fits, and the window slides."""

from __future__ import annotations

import threading
import time

import pytest

from sergeant.connector import Connector

HOUR = 3600.0


def test_grants_stop_at_the_limit_and_say_when_the_next_fits(
    connector: Connector, queue: str
) -> None:
    assert connector.take_starts(queue, 5, HOUR, 3) == (3, 0.0)
    granted, retry = connector.take_starts(queue, 5, HOUR, 3)
    assert granted == 2
    assert HOUR - 60 < retry <= HOUR  # the first grant leaves the window in about an hour
    granted, retry = connector.take_starts(queue, 5, HOUR, 1)
    assert granted == 0
    assert HOUR - 60 < retry <= HOUR
    assert connector.take_starts(queue, 5, HOUR, 0)[0] == 0  # a read grants nothing


def test_a_read_grants_nothing_and_says_a_start_is_allowed(
    connector: Connector, queue: str
) -> None:
    assert connector.take_starts(queue, 2, HOUR, 0) == (0, 0.0)
    assert connector.take_starts(queue, 2, HOUR, 1) == (1, 0.0)
    assert connector.take_starts(queue, 2, HOUR, 0) == (0, 0.0)
    assert connector.take_starts(queue, 2, HOUR, 5)[0] == 1


def test_the_window_slides(connector: Connector, queue: str) -> None:
    window = 0.6
    assert connector.take_starts(queue, 2, window, 1) == (1, 0.0)
    time.sleep(0.3)
    assert connector.take_starts(queue, 2, window, 1) == (1, 0.0)
    granted, retry = connector.take_starts(queue, 2, window, 1)
    assert granted == 0
    assert 0 < retry <= window - 0.25
    time.sleep(retry + 0.05)
    assert connector.take_starts(queue, 2, window, 2)[0] == 1  # only the first one left
    granted, retry = connector.take_starts(queue, 2, window, 1)
    assert granted == 0
    assert 0 < retry <= window


def test_keys_are_independent(connector: Connector, queue: str) -> None:
    assert connector.take_starts(queue, 1, HOUR, 1) == (1, 0.0)
    assert connector.take_starts(queue, 1, HOUR, 1)[0] == 0
    assert connector.take_starts(queue + "-other", 1, HOUR, 1) == (1, 0.0)


def test_concurrent_callers_never_get_more_than_the_limit(connector: Connector, queue: str) -> None:
    limit = 40
    granted: list[int] = []
    errors: list[BaseException] = []

    def take() -> None:
        try:
            for _ in range(200):  # bounded; each call grants or says when to come back
                got, retry = connector.take_starts(queue, limit, HOUR, 3)
                granted.append(got)
                if not got and retry > 60:
                    return
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=take) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    assert sum(granted) == limit


@pytest.mark.parametrize(("tasks", "window", "want"), [(0, 1.0, 1), (1, 0.0, 1), (1, 1.0, -1)])
def test_bad_arguments_are_refused(
    connector: Connector, queue: str, tasks: int, window: float, want: int
) -> None:
    with pytest.raises(ValueError, match="take_starts"):
        connector.take_starts(queue, tasks, window, want)
