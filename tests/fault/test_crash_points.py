"""A worker SIGKILLed at a named point of its loop (``SERGEANT_FAULT``): the outcome is fixed.

Before the acknowledgement the task runs again; after it, never.
"""

from __future__ import annotations

import signal

import pytest

from tests.fault.harness import QUEUE, Chaos
from tests.servers import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]

BROKERS = ["local", "redis", "redis-cluster", "mongo"]


def _crash(chaos: Chaos, point: str) -> str:
    """Push one task, run a worker that SIGKILLs itself at ``point``; the task's id."""
    [task_id] = chaos.push([{"ms": 1}])
    worker = chaos.start_worker(fault=point)
    assert worker.wait(timeout=30) == -signal.SIGKILL
    return task_id


def _run_clean_worker_until(chaos: Chaos, task_id: str, runs: int) -> None:
    chaos.start_worker()
    wait_until(lambda: chaos.runs()[task_id] >= runs, timeout=30, message=f"{runs} runs")
    wait_until(chaos.broker_is_empty, timeout=30, message="an empty queue")


@pytest.mark.parametrize("chaos", BROKERS, indirect=True)
@pytest.mark.parametrize("point", ["after_lease", "before_ack"])
def test_crash_before_the_ack_runs_the_task_again(chaos: Chaos, point: str) -> None:
    """Killed after leasing or before acknowledging: the lease expires and the task reruns."""
    chaos.configure(lease=1)
    task_id = _crash(chaos, point)
    ran_before = chaos.runs()[task_id]
    assert ran_before == (0 if point == "after_lease" else 1)
    _run_clean_worker_until(chaos, task_id, ran_before + 1)
    assert chaos.runs()[task_id] == ran_before + 1
    assert [attempt for tid, attempt, _ in chaos.done() if tid == task_id][-1] == 2
    assert chaos.connector.dead_count(QUEUE) == 0


@pytest.mark.parametrize("chaos", BROKERS, indirect=True)
def test_crash_after_the_ack_never_runs_the_task_again(chaos: Chaos) -> None:
    """Killed right after the acknowledgement: the task is gone for good and never reruns."""
    chaos.configure(lease=1)
    task_id = _crash(chaos, "after_ack")
    assert chaos.runs()[task_id] == 1
    assert chaos.broker_is_empty()  # acknowledged: nothing left to reclaim
    [sentinel] = chaos.push([{"ms": 1}])
    _run_clean_worker_until(chaos, sentinel, 1)
    assert chaos.runs()[task_id] == 1
    assert chaos.connector.dead_count(QUEUE) == 0
