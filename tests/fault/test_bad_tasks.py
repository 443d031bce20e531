"""Tasks that must not stop the queue: a GIL-holding poison task, and undecodable bytes."""

from __future__ import annotations

import pickle

import pytest

from sergeant.encoder import Encoder
from sergeant.objects import Task
from tests.fault.harness import QUEUE, Chaos
from tests.servers import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

BOUND = 2


@pytest.mark.parametrize("chaos", ["redis"], indirect=True)
def test_gil_holding_poison_is_dead_lettered_as_killed_after_timeout(chaos: Chaos) -> None:
    """Killed by the watchdog each time, then dead-lettered past the bound; the rest all run."""
    chaos.configure(lease=1, timeout=1, grace=1, max_deliveries=BOUND)
    [poison] = chaos.push([{"action": "gil_poison"}])
    behind = chaos.push([{"ms": 1} for _ in range(200)])
    supervisor = chaos.start_supervisor(2)
    wait_until(lambda: chaos.connector.dead_count(QUEUE) == 1, timeout=90, message="the poison")
    wait_until(lambda: not chaos.check(behind)[0], timeout=60, message="the 200 tasks")
    [(task, dead)] = chaos.producer.get_dead_tasks()
    attempts = [attempt for tid, attempt, _ in chaos.starts() if tid == poison]
    lost, duplicated = chaos.check(behind)
    print(
        f"poison: started {len(attempts)} times, dead letter {dead.reason!r} "
        f"({dead.error!r}) after {dead.deliveries} deliveries; behind it lost {len(lost)}, "
        f"duplicated {sum(n - 1 for n in duplicated.values())}"
    )
    assert task is not None
    assert task.id == poison
    assert dead.reason == "killed after timeout"
    assert "hard deadline" in dead.error
    assert attempts == list(range(1, BOUND + 1))
    assert dead.deliveries == BOUND  # charged at each kill, dead-lettered at the bound
    assert poison not in chaos.runs()
    assert lost == []
    assert supervisor.poll() is None
    wait_until(chaos.broker_is_empty, timeout=30, message="an empty queue")


def _malformed() -> dict[str, bytes]:
    task = Task(kwargs={"ms": 1})
    pickled = Encoder("pickle").encode(task)
    return {
        "garbage": b"\x00\xffnot a task at all\x13\x37",
        "truncated pickle": pickled[: len(pickled) // 2],
        "msgpack in a pickle queue": Encoder("msgpack").encode(task),
        "pickle of a non-task": pickle.dumps({"not": "a task"}),
    }


@pytest.mark.parametrize("chaos", ["redis", "redis-cluster", "local", "mongo"], indirect=True)
def test_malformed_payloads_are_dead_lettered_and_the_worker_goes_on(chaos: Chaos) -> None:
    """Each undecodable payload is dead-lettered with the decoder's error; nothing runs it."""
    chaos.configure(per_transaction=3)
    bad = _malformed()
    chaos.connector.push_many(QUEUE, list(bad.values()))
    [good] = chaos.push([{"ms": 1}])
    worker = chaos.start_worker()
    wait_until(lambda: chaos.runs()[good] == 1, timeout=30, message="the good task")
    dead = chaos.connector.dead_letters(QUEUE)
    print("dead letters:", [(d.payload[:12], d.reason) for d in dead])
    assert sorted(d.payload for d in dead) == sorted(bad.values())
    assert all(d.reason.startswith("undecodable payload: ") for d in dead)
    assert all(d.error for d in dead)
    assert list(chaos.runs()) == [good]
    assert worker.poll() is None
    wait_until(chaos.broker_is_empty, timeout=30, message="an empty queue")
