"""Retrying broker calls, and the delivery bound's dead-letter reasons (no processes)."""

from __future__ import annotations

import random

import pytest

from sergeant.broker import KILLED_AFTER_TIMEOUT, WORKER_DIED, Broker, kill_note_key
from sergeant.connector import create
from sergeant.consume import backoff as _backoff
from sergeant.consume.backoff import Backoff, retry_call
from sergeant.encoder import Encoder
from sergeant.errors import BrokerUnavailable, ConfigError, ConnectionLost
from sergeant.objects import Task


def test_backoff_doubles_up_to_its_cap_with_jitter() -> None:
    """Delays grow from the first step to the cap, each in the upper half of its step."""
    backoff = Backoff(0.1, 1.0, random.Random(7))
    delays = [backoff.next_delay() for _ in range(8)]
    steps = [0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0, 1.0]
    assert all(step / 2 <= delay <= step for delay, step in zip(delays, steps, strict=True))
    backoff.reset()
    assert backoff.next_delay() <= 0.1


def test_retry_call_retries_connection_errors_until_success(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Lost connections are retried; the outage is logged once (broker_retry), and its
    end (broker_back), not each attempt; the result comes back."""
    failures: list[Exception] = [ConnectionLost("reset"), BrokerUnavailable("down")]

    def flaky() -> str:
        if failures:
            raise failures.pop(0)
        return "ok"

    assert retry_call("lease", flaky, "q") == "ok"
    events = [getattr(record, "event", None) for record in caplog.records]
    assert events == ["broker_retry", "broker_back"]


def test_retry_call_builds_no_backoff_when_the_first_attempt_succeeds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The backoff (a Random seeded from urandom) is built only once a call has failed."""

    def no_backoff() -> None:
        raise AssertionError("a Backoff was built for a call that succeeded")

    monkeypatch.setattr(_backoff, "Backoff", no_backoff)
    assert retry_call("lease", lambda: "ok", "q") == "ok"


def test_retry_call_gives_up_after_its_bound_and_never_retries_other_errors() -> None:
    """A bounded retry re-raises once time is up; a non-connection error is never retried."""
    calls = 0

    def down() -> None:
        nonlocal calls
        calls += 1
        raise BrokerUnavailable("down")

    with pytest.raises(BrokerUnavailable):
        retry_call("ack", down, "q", give_up_after_seconds=0.0)
    assert calls == 1

    def refused() -> None:
        raise ConfigError("bad")

    with pytest.raises(ConfigError):
        retry_call("ack", refused, "q")


@pytest.mark.parametrize(("noted", "reason"), [(True, KILLED_AFTER_TIMEOUT), (False, WORKER_DIED)])
def test_task_past_the_delivery_bound_is_dead_lettered_with_its_reason(
    memory_name: str, noted: bool, reason: str
) -> None:
    """Leased past max_deliveries, a task is dead-lettered (not run), noted kills named."""
    broker = Broker(create("memory", {"name": memory_name}), Encoder())
    task = Task(kwargs={})
    broker.push_tasks("q", [task])
    for _ in range(2):  # two deliveries whose leases expire (their workers "died")
        [leased] = broker.lease_tasks("q", 1, "w", 1.0, max_deliveries=2)
        broker.connector.extend_leases("q", [leased.delivery], -1.0)
        assert broker.reclaim("q", 0).requeued == 1
    if noted:
        broker.connector.key_set(kill_note_key("q", task.id), b"killed at the hard deadline")
    assert broker.lease_tasks("q", 1, "w", 1.0, max_deliveries=2) == []
    [(dead_task, dead)] = broker.dead_tasks("q")
    assert dead_task is not None
    assert dead_task.id == task.id
    assert (dead.reason, dead.deliveries) == (reason, 3)
    assert broker.connector.key_get(kill_note_key("q", task.id)) is None
    broker.connector.close()
