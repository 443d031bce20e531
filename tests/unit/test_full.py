"""A full broker is logged as a state: one line when it fills, then once a minute."""

from __future__ import annotations

import logging

import pytest

from sergeant.errors import BrokerFull
from sergeant.logging import refusals as _full

LOGGER = logging.getLogger("tests.full")


def events(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [getattr(record, "event", "") for record in caplog.records]


def test_refusals_log_the_first_then_once_a_minute(caplog: pytest.LogCaptureFixture) -> None:
    refusals = _full.Refusals(LOGGER, "the test broker")
    with caplog.at_level(logging.INFO, logger=LOGGER.name):
        for _ in range(1000):
            refusals.refused(BrokerFull("no room"))
    assert events(caplog) == ["broker_full"]
    assert "no room" in caplog.records[0].getMessage()
    assert refusals.count == 1000


def test_a_taken_push_ends_the_state_once(caplog: pytest.LogCaptureFixture) -> None:
    refusals = _full.Refusals(LOGGER, "the test broker")
    with caplog.at_level(logging.INFO, logger=LOGGER.name):
        refusals.refused(BrokerFull())
        refusals.refused(BrokerFull())
        refusals.accepted()
        refusals.accepted()
        refusals.refused(BrokerFull())  # full again: a first line again
    assert events(caplog) == ["broker_full", "broker_not_full", "broker_full"]
    assert "2 were refused" in caplog.records[1].getMessage()


def test_a_minute_later_the_count_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    refusals = _full.Refusals(LOGGER, "the test broker")
    refusals._throttle = _full.Throttle(seconds=0.0)  # every call is "a minute later"
    with caplog.at_level(logging.INFO, logger=LOGGER.name):
        refusals.refused(BrokerFull())
        refusals.refused(BrokerFull())
    assert events(caplog) == ["broker_full", "broker_full"]
    assert "still full: 1 pushes refused" in caplog.records[1].getMessage()


def test_throttle_says_yes_once_per_period() -> None:
    throttle = _full.Throttle(seconds=3600)
    assert [throttle.due() for _ in range(5)] == [True, False, False, False, False]
