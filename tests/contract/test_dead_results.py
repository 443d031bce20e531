"""A dead-lettered task's failure is its result, on every broker set-up.

Whatever moves a task to the dead letters (a worker, the supervisor's charge of a
dead child, a reclaim of an expired lease, the delivery bound at lease), the dead
letter is written in the broker's atomic step, and ``get_result`` finds it by the
task's id, at once, not after its timeout.
"""

from __future__ import annotations

import pickle
import time
import typing
from pathlib import Path

import pytest

from sergeant.broker import Broker
from sergeant.broker.results import DEAD_LETTER, ResultStore
from sergeant.connector import Connector
from sergeant.encoder import Encoder
from sergeant.errors import TaskFailed
from sergeant.executor import Outcome
from sergeant.objects import Task
from tests.servers import wait_until

OWNER = "worker-test"
#: get_result's timeout in these tests; a dead letter must be found well before it.
TIMEOUT = 60.0
PROMPT = 10.0


def _store(
    connector: Connector, serializer: str = "pickle", **encoder_options: typing.Any
) -> tuple[Broker, ResultStore]:
    encoder = Encoder(serializer, **encoder_options)
    return Broker(connector, encoder), ResultStore(connector, encoder, 60.0)


def _raises_promptly(results: ResultStore, task_id: str, queue: str) -> TaskFailed:
    started = time.monotonic()
    with pytest.raises(TaskFailed) as failed:
        results.fetch(task_id, TIMEOUT, queue)
    assert time.monotonic() - started < PROMPT
    assert failed.value.task_id == task_id
    assert failed.value.error_type == DEAD_LETTER
    return failed.value


@pytest.mark.parametrize(
    ("serializer", "signed"),
    [("pickle", False), ("msgpack", False), ("json", False), ("pickle", True)],
)
def test_a_task_dead_lettered_by_its_worker_raises_task_failed(
    connector: Connector, queue: str, serializer: str, signed: bool
) -> None:
    """dead_letter_many (max retries, undecodable): get_result raises with the reason;
    a signed task's too."""
    keys = {"signing_keys": [b"a-key-of-32-bytes-for-the-tests!"]} if signed else {}
    broker, results = _store(connector, serializer, **keys)
    task, other = Task({"x": 1}), Task({"x": 2})
    broker.push_tasks(queue, [other, task])
    for leased in broker.lease_tasks(queue, 2, OWNER, 30.0):
        if leased.task.id == task.id:
            broker.dead_letter(queue, leased.delivery, "max retries", "boom")
    failed = _raises_promptly(results, task.id, queue)
    assert failed.reason == "max retries"
    assert failed.error_message == "dead-lettered after 1 deliveries: max retries: boom"


def test_a_task_charged_past_its_bound_raises_task_failed(connector: Connector, queue: str) -> None:
    """charge_many (the supervisor settling a dead child) dead-letters: get_result sees it."""
    broker, results = _store(connector)
    task = Task({"x": 1})
    broker.push_tasks(queue, [task])
    [leased] = broker.lease_tasks(queue, 1, OWNER, 30.0)
    broker.charge(queue, [leased.delivery], 1, "worker killed by SIGKILL")
    assert _raises_promptly(results, task.id, queue).reason == "worker killed by SIGKILL"


def test_a_task_reclaimed_past_its_bound_raises_task_failed(
    connector: Connector, queue: str
) -> None:
    """reclaim_expired (another worker, after a lease expired) dead-letters: get_result sees it."""
    broker, results = _store(connector)
    task = Task({"x": 1})
    broker.push_tasks(queue, [task])
    broker.lease_tasks(queue, 1, OWNER, 0.2)
    wait_until(lambda: broker.reclaim(queue, 1).dead_lettered == 1, timeout=20)
    assert _raises_promptly(results, task.id, queue).reason == "worker died"


def test_a_task_over_its_bound_at_lease_raises_task_failed(
    connector: Connector, queue: str
) -> None:
    """The delivery bound checked at lease dead-letters: get_result sees it."""
    broker, results = _store(connector)
    task = Task({"x": 1})
    broker.push_tasks(queue, [task])
    broker.lease_tasks(queue, 1, OWNER, 0.2)
    wait_until(lambda: broker.reclaim(queue, 0).requeued == 1, timeout=20)
    assert broker.lease_tasks(queue, 1, OWNER, 30.0, max_deliveries=1) == []
    failed = _raises_promptly(results, task.id, queue)
    assert failed.reason == "worker died"
    assert "after 2 deliveries" in failed.error_message


def test_a_requeued_dead_letter_that_succeeds_gives_its_success(
    connector: Connector, queue: str
) -> None:
    """After ``dead requeue`` and a successful run, get_result returns the value."""
    broker, results = _store(connector)
    task = Task({"x": 1})
    broker.push_tasks(queue, [task])
    [leased] = broker.lease_tasks(queue, 1, OWNER, 30.0)
    broker.dead_letter(queue, leased.delivery, "max retries")
    _raises_promptly(results, task.id, queue)
    assert connector.requeue_dead(queue) == 1
    [again] = broker.lease_tasks(queue, 1, OWNER, 30.0)
    results.store(again.task.id, Outcome.SUCCESS, "done")
    broker.ack(queue, [again.delivery])
    assert results.fetch(task.id, 0, queue) == "done"


def test_only_the_task_itself_matches_not_one_naming_it(connector: Connector, queue: str) -> None:
    """A dead task whose kwargs carry another task's id is not that task's failure."""
    broker, results = _store(connector)
    task = Task({"x": 1})
    broker.push_tasks(queue, [Task({"parent": task.id})])
    [leased] = broker.lease_tasks(queue, 1, OWNER, 30.0)
    broker.dead_letter(queue, leased.delivery, "max retries")
    with pytest.raises(Exception, match="no result for task"):
        results.fetch(task.id, 0.3, queue)


class _Payload:
    """Writes a marker file when unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[Path]]:
        return (Path.touch, (self.marker,))


def test_an_undecodable_dead_letter_is_found_without_running_it(
    connector: Connector, queue: str, tmp_path: Path
) -> None:
    """A hostile pickle in the dead letters is matched by id, never unpickled."""
    _, results = _store(connector)
    marker = tmp_path / "marker"
    task_id = "hostile-1"
    connector.push(queue, pickle.dumps([task_id, {"x": _Payload(marker)}, None, 0.0, 0]))
    [delivery] = connector.lease_many(queue, 1, OWNER, 30.0)
    connector.dead_letter_many(queue, [delivery], "undecodable payload: pickle: ...")
    assert str(_raises_promptly(results, task_id, queue).reason).startswith("undecodable")
    assert not marker.exists()
    pickle.loads(connector.dead_letters(queue)[0].payload)  # the payload is hostile indeed
    assert marker.exists()
