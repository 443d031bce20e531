"""``Broker.ack_and_lease_tasks`` on a real (in-memory) connector: acknowledge, then lease."""

from __future__ import annotations

import logging
import typing

import pytest

from sergeant.broker import Broker
from sergeant.connector import create
from sergeant.encoder import Encoder
from sergeant.objects import Task


@pytest.fixture
def broker(memory_name: str) -> typing.Iterator[Broker]:
    broker = Broker(create("memory", {"name": memory_name}), Encoder())
    yield broker
    broker.connector.close()


def test_ack_and_lease_acknowledges_then_leases_in_order(broker: Broker) -> None:
    """The acks are settled for good, the next tasks come with their leases, aligned."""
    pushed = [Task(kwargs={"i": i}) for i in range(3)]
    broker.push_tasks("q", pushed)
    acked, first = broker.ack_and_lease_tasks("q", [], 2, "w", 30.0)
    assert acked == 0
    assert [task.id for task in first.tasks] == [task.id for task in pushed[:2]]
    assert [task.deliveries for task in first.tasks] == [1, 1]
    acked, second = broker.ack_and_lease_tasks("q", first.deliveries, 5, "w", 30.0)
    assert acked == 2
    assert [task.id for task in second.tasks] == [pushed[2].id]
    assert len(second.deliveries) == 1
    assert broker.connector.leased_count("q") == 1
    assert broker.ack_and_lease_tasks("q", first.deliveries, 5, "w", 30.0)[0] == 0  # stale


def test_ack_and_lease_dead_letters_undecodable_payloads(broker: Broker) -> None:
    """An undecodable payload is dead-lettered with its decoder error; the rest stay aligned."""
    good = [Task(kwargs={"i": i}) for i in range(2)]
    broker.push_tasks("q", good[:1])
    broker.connector.push("q", b"not a task")
    broker.push_tasks("q", good[1:])
    _, batch = broker.ack_and_lease_tasks("q", [], 10, "w", 30.0)
    assert [task.id for task in batch.tasks] == [task.id for task in good]
    assert [broker.encoder.decode(d.payload).id for d in batch.deliveries] == [
        task.id for task in good
    ]
    [(task, dead)] = broker.dead_tasks("q")
    assert task is None
    assert "undecodable" in dead.reason


def test_pop_drops_undecodable_payloads_and_logs_them(
    broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    """At-most-once: an undecodable payload is logged and dropped; the rest come in order."""
    good = [Task(kwargs={"i": i}) for i in range(2)]
    broker.push_tasks("q", good[:1])
    broker.connector.push("q", b"not a task")
    broker.push_tasks("q", good[1:])
    with caplog.at_level(logging.ERROR):
        popped = broker.pop_tasks("q", 10)
    assert [task.id for task in popped] == [task.id for task in good]
    assert [getattr(r, "event", None) for r in caplog.records] == ["task_undecodable"]
    assert broker.number_of_enqueued_tasks("q") == 0


def test_the_log_and_the_dead_letter_count_the_same_deliveries(
    broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    """'after N deliveries' in the log is the dead letter's count: times handed out."""
    broker.push_tasks("q", [Task(kwargs={})])
    [first] = broker.lease_tasks("q", 1, "w", 30.0)
    broker.release("q", [first.delivery])  # unstarted: not counted
    [second] = broker.lease_tasks("q", 1, "w", 30.0)
    broker.charge("q", [second.delivery], 0, "worker died")  # ran: counted
    with caplog.at_level(logging.ERROR, logger="sergeant.broker"):
        assert broker.lease_tasks("q", 1, "w", 30.0, max_deliveries=1) == []
    [(_, letter)] = broker.dead_tasks("q")
    assert letter.deliveries == 2
    assert "after 2 deliveries" in caplog.text


def test_a_flood_of_undecodable_payloads_is_one_line_not_one_per_task(
    broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    """Whoever can write to the broker cannot flood the log: the first refusal is
    logged, the next ones are counted for the next line (a minute later)."""
    for _ in range(50):
        broker.connector.push("flood", b"not a task")
    with caplog.at_level(logging.ERROR):
        leased = broker.lease_tasks("flood", 50, "owner", 30.0)
    assert leased == []
    assert broker.connector.dead_count("flood") == 50
    assert [getattr(r, "event", None) for r in caplog.records] == ["task_undecodable"]
