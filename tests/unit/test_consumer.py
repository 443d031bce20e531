"""The consumer's lease bookkeeping on a real (in-memory) broker: held, acked, given back."""

from __future__ import annotations

import logging
import typing

import pytest

from sergeant import config
from sergeant.broker import Broker
from sergeant.connector import Delivery, create
from sergeant.consume import Consumer, presence
from sergeant.encoder import Encoder
from sergeant.executor import Outcome
from sergeant.objects import Task

QUEUE = "q"


@pytest.fixture
def broker(memory_name: str) -> typing.Iterator[Broker]:
    broker = Broker(create("memory", {"name": memory_name}), Encoder())
    yield broker
    broker.connector.close()


def make_consumer(broker: Broker, **settings: typing.Any) -> Consumer:
    worker_config = config.WorkerConfig(name=QUEUE, block_seconds=0, **settings)
    return Consumer(broker, worker_config)


def heartbeat(consumer: Consumer) -> tuple[int, str | None, int]:
    """What the consumer's heartbeat says now: running tasks, current task, tasks done."""
    consumer.publish_presence()
    [info] = presence.decode(consumer.broker.connector.workers(), QUEUE)
    return info["running"], info["current_task_id"], info["tasks_done"]


def test_a_batch_is_held_until_acknowledged_with_the_next_lease(broker: Broker) -> None:
    """Unstarted, running and settled tasks stay held; the next pull acknowledges them."""
    broker.push_tasks(QUEUE, [Task(kwargs={"i": i}) for i in range(5)])
    consumer = make_consumer(broker, tasks_per_transaction=3, max_tasks_per_run=5)
    tasks = iter(consumer)
    try:
        first = next(tasks)
        assert len(consumer.held_deliveries()) == 3
        consumer.started(first)
        assert heartbeat(consumer)[:2] == (1, first.id)
        consumer.settle(first, Outcome.SUCCESS)
        assert len(consumer.held_deliveries()) == 3
        assert heartbeat(consumer) == (0, None, 1)
        for _ in range(2):
            task = next(tasks)
            consumer.started(task)
            consumer.settle(task, Outcome.SUCCESS)
        next(tasks)  # the second pull acknowledges the first batch
        assert len(consumer.held_deliveries()) == 2
        assert broker.connector.leased_count(QUEUE) == 2
        assert consumer.tasks_done == 3
    finally:
        consumer.close()
    assert broker.connector.leased_count(QUEUE) == 0
    assert broker.number_of_enqueued_tasks(QUEUE) == 2  # released: the started one too


def test_a_snapshot_between_any_two_steps_holds_every_lease(broker: Broker) -> None:
    """The heartbeat thread may run between any two steps of the loop: a snapshot taken
    before and after every change of the lease stages (here, by the stages themselves)
    misses no lease. (Not sys.settrace: CPython 3.11 can hang tracing after the thread
    killer cleared an exception.)"""
    size = 20
    broker.push_tasks(QUEUE, [Task(kwargs={"i": i}) for i in range(size)])
    consumer = make_consumer(broker, tasks_per_transaction=size, max_tasks_per_run=size)
    sizes: list[int] = []

    def snapshot() -> None:
        sizes.append(len(consumer.held_deliveries()))

    class Running(dict[int, Delivery]):
        def __setitem__(self, key: int, value: Delivery) -> None:
            snapshot()
            super().__setitem__(key, value)
            snapshot()

        def __delitem__(self, key: int) -> None:
            snapshot()
            super().__delitem__(key)
            snapshot()

    class Settled(list[Delivery]):
        def append(self, delivery: Delivery) -> None:
            snapshot()
            super().append(delivery)
            snapshot()

    consumer._running, consumer._to_ack = Running(), Settled()
    try:
        for task in consumer:
            consumer.started(task)
            consumer.settle(task, Outcome.SUCCESS)
    finally:
        consumer.close()
    assert len(sizes) == 6 * size  # three changes per task
    assert set(sizes) == {size}


def test_max_retries_dead_letters_and_is_not_acknowledged(
    broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    """A task settled with max retries goes to the dead letters, without a stale ack."""
    broker.push_tasks(QUEUE, [Task(kwargs={"i": i}) for i in range(2)])
    consumer = make_consumer(broker, tasks_per_transaction=2, max_tasks_per_run=2)
    try:
        with caplog.at_level(logging.WARNING):
            for task, outcome in zip(consumer, [Outcome.MAX_RETRIES, Outcome.SUCCESS], strict=True):
                consumer.started(task)
                consumer.settle(task, outcome)
    finally:
        consumer.close()
    [(_, dead)] = broker.dead_tasks(QUEUE)
    assert dead.reason == "max retries"
    assert broker.connector.leased_count(QUEUE) == 0
    assert "stale_ack" not in [getattr(record, "event", None) for record in caplog.records]


def test_acknowledgements_of_expired_leases_are_reported_stale(
    broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    """Leases that expired and were reclaimed before the ack: logged as stale_ack."""
    broker.push_tasks(QUEUE, [Task(kwargs={"i": i}) for i in range(2)])
    consumer = make_consumer(broker, tasks_per_transaction=2, max_tasks_per_run=4)
    tasks = iter(consumer)
    try:
        for _ in range(2):
            task = next(tasks)
            consumer.started(task)
            consumer.settle(task, Outcome.SUCCESS)
        broker.extend(QUEUE, consumer.held_deliveries(), -1.0)
        assert broker.reclaim(QUEUE, 0).requeued == 2
        with caplog.at_level(logging.WARNING):
            again = next(tasks)
        assert again.deliveries == 2
    finally:
        consumer.close()
    [stale] = [record for record in caplog.records if getattr(record, "event", None) == "stale_ack"]
    assert "2 of 2 acknowledgements were rejected" in stale.getMessage()
