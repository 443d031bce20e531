"""``get_result`` of a task that ended in the dead letters raises ``TaskFailed`` at once.

Real workers under the real supervisor; the caller is a producer in this process,
waiting with a long timeout: the failure must come well before it (the workers keep
no results at all, so only the dead letter can answer).
"""

from __future__ import annotations

import pickle
import time

import pytest

from sergeant.broker.results import DEAD_LETTER
from sergeant.errors import TaskFailed
from tests.fault.harness import QUEUE, Chaos, kill
from tests.servers import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

#: get_result's timeout; each failure must come well before it.
TIMEOUT = 120.0


def _failure(chaos: Chaos, task_id: str) -> tuple[TaskFailed, float]:
    started = time.monotonic()
    with pytest.raises(TaskFailed) as failed:
        chaos.producer.get_result(task_id, timeout=TIMEOUT)
    took = time.monotonic() - started
    print(f"{task_id}: {failed.value} after {took:.1f}s")
    assert failed.value.error_type == DEAD_LETTER
    assert took < TIMEOUT / 2
    return failed.value, took


@pytest.mark.parametrize("chaos", ["redis", "local"], indirect=True)
def test_a_task_killed_by_the_watchdog_raises_task_failed(chaos: Chaos) -> None:
    chaos.configure(lease=60, prefetch="none", timeout=1, grace=1, max_deliveries=2)
    [poison] = chaos.push([{"action": "gil_poison"}])
    chaos.start_supervisor(1)
    failed, _ = _failure(chaos, poison)
    assert failed.reason == "killed after timeout"
    assert "after 2 deliveries" in failed.error_message


@pytest.mark.parametrize("chaos", ["redis", "local"], indirect=True)
def test_tasks_that_end_or_lose_their_worker_raise_task_failed(chaos: Chaos) -> None:
    chaos.configure(lease=60, prefetch="none", max_deliveries=1, max_retries=1)
    exiting = chaos.push([{"action": "raise", "name": "SystemExit"}])[0]
    retried = chaos.push([{"action": "retry"}])[0]
    # Unpicklable by the workers (no such module), readable by id without running it.
    undecodable = "undecodable-1"
    payload = pickle.dumps([undecodable, {}, None, 0.0, 0], protocol=0)
    payload = payload.replace(b"(dp", b"(cno_such_module_here\nThing\n(tR(dp", 1)
    chaos.connector.push(QUEUE, payload)
    supervisor = chaos.start_supervisor(1)
    assert _failure(chaos, exiting)[0].reason == "raised SystemExit"
    assert _failure(chaos, retried)[0].reason == "max retries"
    assert "undecodable" in str(_failure(chaos, undecodable)[0].reason)
    sleeper = chaos.push([{"ms": 60_000}])[0]
    wait_until(
        lambda: any(task_id == sleeper for task_id, _, _ in chaos.starts()),
        timeout=60,
        message="the long task to start",
    )
    [pid] = chaos.worker_pids(supervisor)
    kill(pid)
    assert _failure(chaos, sleeper)[0].reason == "worker killed by SIGKILL"
