"""The rate limit's parts that need no server: the sliding-window arithmetic, the
margin, the worker's permit sizing and waits (on the in-process memory broker), and
the ``sergeant stats`` table."""

from __future__ import annotations

import logging
import uuid

import pytest

from sergeant import config
from sergeant.broker import Broker
from sergeant.broker.permits import margin_seconds, window_seconds
from sergeant.cli.queues import _rate_limit_table
from sergeant.connector import _permits
from sergeant.consume.throttle import Throttle
from sergeant.ops.stats import QueueStats


def test_grant_keeps_the_window_and_says_when_the_oldest_leaves() -> None:
    log = [(10.0, 3), (10.5, 2)]
    found = _permits.grant(log, 10.8, 5, 1.0, 1)
    assert found.granted == 0
    assert found.retry_seconds == pytest.approx(0.2)  # 10.0 leaves at 11.0
    found = _permits.grant(log, 11.0, 5, 1.0, 4)  # 10.0 has left: 3 free
    assert found.granted == 3
    assert found.log == [(10.5, 2), (11.0, 3)]
    assert found.retry_seconds == pytest.approx(0.5)
    assert _permits.grant([], 1.0, 5, 1.0, 0) == (_permits.Grant([], 0, 0.0))


def test_a_grant_stamped_ahead_of_this_clock_still_counts() -> None:
    assert _permits.grant([(20.0, 5)], 10.0, 5, 1.0, 1).granted == 0


def test_the_margin_and_the_window() -> None:
    assert margin_seconds(config.RateLimit(10, 1.0)) == pytest.approx(0.05)
    assert margin_seconds(config.RateLimit(10, 0.1)) == pytest.approx(0.02)
    assert window_seconds(config.RateLimit(10, 60.0)) == pytest.approx(63.0)


@pytest.fixture
def broker() -> Broker:
    name = f"rate-{uuid.uuid4().hex[:8]}"
    return Broker.from_config(config.Connector(type="memory", params={"name": name}))


def test_the_throttle_asks_for_what_it_starts_within_the_margin(broker: Broker) -> None:
    waits: list[int] = []
    throttle = Throttle(broker, "q", config.RateLimit(1000, 1.0), lambda: waits.append(1))
    assert throttle.want(100) == 1  # nothing measured yet
    assert throttle.acquire(100) == 1
    throttle.interval = 0.001  # 1 ms a task: 50 within the 50 ms margin
    assert throttle.want(100) == 51
    assert throttle.want(10) == 10
    throttle.pulled(0)  # an empty pull: back to one at a time
    assert throttle.want(100) == 1
    assert throttle.before_pull(100) == 1  # idle: one task, no permit spent on it
    assert throttle.allowed == 0
    assert broker.take_starts("q", config.RateLimit(1000, 1.0), 0) == (0, 0.0)
    assert not waits


def test_a_throttled_worker_waits_as_long_as_the_broker_says(
    broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sergeant.consumer")
    waits: list[int] = []
    limit = config.RateLimit(2, 0.2)
    throttle = Throttle(broker, "q", limit, lambda: waits.append(1))
    throttle.interval = 0.0001
    assert throttle.acquire(10) == 2
    assert broker.next_start_in("q", limit) > 0
    assert throttle.acquire(10) >= 1  # waited for the window to slide
    assert waits == [1]
    assert throttle.throttled
    assert throttle.acquire(10) >= 1  # waits again: still one line
    assert [r.event for r in caplog.records] == ["rate_limited"]  # type: ignore[attr-defined]
    assert throttle.report() == {
        "rate_limit": {"tasks": 2, "per_seconds": 0.2},
        "throttled": True,
    }


def test_the_stats_table_lists_limited_queues_only() -> None:
    row: QueueStats = {
        "queue": "emails", "ready": 0, "ready_high": 0, "ready_normal": 0, "delayed": 0,
        "leased": 0, "dead": 0, "done_last_minute": 0, "workers": [],
        "rate_limit": {
            "tasks": 50, "per_seconds": 1.0, "next_start_in": 0.25, "throttled_workers": 3
        },
    }  # fmt: skip
    table = _rate_limit_table([row, {**row, "queue": "plain", "rate_limit": None}])
    assert table is not None
    assert table.row_count == 1
    assert _rate_limit_table([{**row, "rate_limit": None}]) is None
