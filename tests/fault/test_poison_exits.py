"""Charge only what ran: tasks that end their worker process, and deaths of busy workers.

Every test runs real workers under the real supervisor with the defaults that matter
(a 60 s lease, the default prefetch), so a task that waited for a lease to expire
would show; the ledger (``tests.workers.fault``) records each start with the task's
delivery count, so a charge is visible without asking the broker.
"""

from __future__ import annotations

import collections
import time

import pytest

from tests.fault.harness import QUEUE, Chaos, kill
from tests.servers import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

BOUND = 3
#: The poison tasks and the reason each one's dead letter must give.
POISONS: dict[str, tuple[dict[str, object], str]] = {
    "SystemExit": ({"action": "raise", "name": "SystemExit"}, "raised SystemExit"),
    "KeyboardInterrupt": (
        {"action": "raise", "name": "KeyboardInterrupt"},
        "raised KeyboardInterrupt",
    ),
    "PoisonError": ({"action": "raise", "name": "PoisonError"}, "raised PoisonError"),
    "os._exit(0)": ({"action": "exit", "code": 0}, "worker exited with code 0 while running it"),
}


def _starts_by_task(chaos: Chaos) -> dict[str, list[int]]:
    """The delivery count of each start, per task id, in order."""
    starts: dict[str, list[int]] = collections.defaultdict(list)
    for task_id, attempt, _ in chaos.starts():
        starts[task_id].append(attempt)
    return starts


def _no_task_charged(chaos: Chaos, task_ids: list[str]) -> None:
    starts = _starts_by_task(chaos)
    charged = {
        task_id: starts[task_id] for task_id in task_ids if any(a > 1 for a in starts[task_id])
    }
    assert charged == {}, f"innocent tasks charged a delivery: {charged}"


@pytest.mark.parametrize("chaos", ["redis", "local"], indirect=True)
def test_tasks_that_end_their_worker_are_dead_lettered_with_their_own_reason(
    chaos: Chaos,
) -> None:
    chaos.configure(lease=60, prefetch="none", max_deliveries=BOUND)
    poisons = {name: chaos.push([kwargs])[0] for name, (kwargs, _) in POISONS.items()}
    behind = chaos.push([{"ms": 1} for _ in range(20)])
    supervisor = chaos.start_supervisor(2)
    wait_until(lambda: not chaos.check(behind)[0], timeout=120, message="the 20 normal tasks")
    wait_until(
        lambda: chaos.connector.dead_count(QUEUE) == len(POISONS), timeout=120, message="poisons"
    )
    dead = {task.id: letter for task, letter in chaos.producer.get_dead_tasks() if task}
    starts = _starts_by_task(chaos)
    for name, task_id in poisons.items():
        print(f"{name}: {dead[task_id].reason!r} after {starts[task_id]}")
        assert dead[task_id].reason == POISONS[name][1]
        assert dead[task_id].deliveries == BOUND
        assert starts[task_id] == list(range(1, BOUND + 1))
    _no_task_charged(chaos, behind)
    assert chaos.check(behind)[0] == []
    # The poisons' processes died; a task they had settled, whose acknowledgement rode
    # on a pull sent ahead, may run once more (uncharged). Nothing else runs twice.
    died = {pid for task_id, _, pid in chaos.starts() if task_id in poisons.values()}
    assert chaos.reruns_not_explained_by_a_death(behind, died) == {}
    assert supervisor.poll() is None
    wait_until(chaos.broker_is_empty, timeout=30, message="an empty queue")


@pytest.mark.parametrize("per_transaction", [1, 10])
@pytest.mark.parametrize("chaos", ["redis", "local"], indirect=True)
def test_a_gil_holding_poison_never_charges_the_tasks_prefetched_behind_it(
    chaos: Chaos, per_transaction: int
) -> None:
    chaos.configure(lease=60, prefetch="none", timeout=1, grace=1, per_transaction=per_transaction)
    [poison] = chaos.push([{"action": "gil_poison"}])
    behind = chaos.push([{"ms": 1} for _ in range(20)])
    began = time.monotonic()
    supervisor = chaos.start_supervisor(1)
    # The default bound is 5: five kills at timeout + grace, each respawned at once.
    wait_until(lambda: not chaos.check(behind)[0], timeout=45, message="the 20 tasks")
    took = time.monotonic() - began
    wait_until(lambda: chaos.connector.dead_count(QUEUE) == 1, timeout=45, message="the poison")
    [(task, letter)] = chaos.producer.get_dead_tasks()
    print(f"20 tasks done in {took:.1f}s; poison: {letter.reason!r}, {letter.deliveries}")
    assert task is not None
    assert task.id == poison
    assert letter.reason == "killed after timeout"
    assert "hard deadline" in letter.error
    assert letter.deliveries == 5
    _no_task_charged(chaos, behind)
    lost, duplicated = chaos.check(behind)
    # A task settled just before a kill may run again (its acknowledgement had not
    # reached the broker): at-least-once, never charged, never lost.
    print(f"lost {len(lost)}, ran twice {len(duplicated)}")
    assert lost == []
    assert supervisor.poll() is None


@pytest.mark.parametrize("chaos", ["redis", "local"], indirect=True)
def test_a_sigkilled_busy_worker_gives_back_its_tasks_at_once(chaos: Chaos) -> None:
    chaos.configure(lease=60, prefetch="none")
    tasks = chaos.push([{"ms": 300} for _ in range(8)])
    supervisor = chaos.start_supervisor(1)
    wait_until(lambda: chaos.starts(), timeout=30, message="the first start")
    [(victim, _, pid)] = chaos.starts()[:1]
    kill(pid)
    killed_at = time.monotonic()
    wait_until(
        lambda: _starts_by_task(chaos)[victim] == [1, 2],
        timeout=20,  # a lease is 60 s: this proves nobody waited for it
        message="the killed task to run again",
    )
    print(f"restarted {time.monotonic() - killed_at:.1f}s after the kill")
    wait_until(lambda: not chaos.check(tasks)[0], timeout=30, message="every task")
    _no_task_charged(chaos, [t for t in tasks if t != victim])
    assert chaos.check(tasks)[0] == []
    assert supervisor.poll() is None
    wait_until(chaos.broker_is_empty, timeout=30, message="an empty queue")


@pytest.mark.parametrize("chaos", ["redis", "local"], indirect=True)
def test_a_task_holding_the_gil_for_three_leases_runs_once(chaos: Chaos) -> None:
    chaos.configure(lease=2, prefetch="none")
    [holder] = chaos.push([{"action": "gil_hold", "seconds": 6}])
    others = chaos.push([{"ms": 50} for _ in range(20)])
    supervisor = chaos.start_supervisor(2)
    wait_until(lambda: not chaos.check([holder, *others])[0], timeout=60, message="every task")
    assert _starts_by_task(chaos)[holder] == [1]
    assert chaos.check([holder, *others]) == ([], {})
    assert supervisor.poll() is None
