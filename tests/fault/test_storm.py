"""SIGKILL storm: busy workers killed again and again under load; nothing is lost.

The supervisor runs three workers leasing batches (``tasks_per_transaction > 1``)
on a 1 s lease; a chaos loop SIGKILLs a worker that is running a task after every
``N`` new ledger rows. MongoDB runs a smaller storm (300 tasks): the nx-27017
test server is much slower than Redis or SQLite.
"""

from __future__ import annotations

import signal
import time

import pytest

from sergeant.consume import prefetch as _prefetch
from tests.fault.harness import QUEUE, Chaos, kill, seeded_random
from tests.servers import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

KILLS = 8
BATCH = 4
WORKERS = 3
SIZES = {"local": 2_000, "redis": 2_000, "mongo": 300}


class Storm:
    """The chaos loop: kill a busy worker every ``every`` new rows; time the redeliveries."""

    def __init__(self, chaos: Chaos, supervisor_pid: int, every: int) -> None:
        self.chaos = chaos
        self.every = every
        self.supervisor_pid = supervisor_pid
        self.kills: list[tuple[int, str]] = []  # (pid, in-flight task id)
        self.killed_at: dict[str, tuple[float, int]] = {}  # task id -> (monotonic, pid)
        self.redelivery_seconds: list[float] = []

    def busy_task(self, pids: list[int]) -> tuple[int, str] | None:
        """A (pid, task id) of a worker in the middle of a task, if any."""
        done = {(task_id, attempt) for task_id, attempt, _ in self.chaos.done()}
        for task_id, attempt, pid in reversed(self.chaos.starts()):
            if pid in pids and (task_id, attempt) not in done:
                return pid, task_id
        return None

    def step(self, proc: object) -> bool:
        """One poll: time redeliveries, kill when due. True once every kill was made."""
        self.note_redeliveries()
        if len(self.kills) >= KILLS:
            return True
        if len(self.chaos.done()) < self.every * (len(self.kills) + 1):
            return False
        pids = Chaos.worker_pids(proc)  # type: ignore[arg-type]
        busy = self.busy_task(pids)
        if busy is None:
            return False
        pid, task_id = busy
        kill(pid, signal.SIGKILL)
        self.kills.append(busy)
        self.killed_at[task_id] = (time.monotonic(), pid)
        return False

    def note_redeliveries(self) -> None:
        for task_id, _, pid in self.chaos.starts():
            killed = self.killed_at.get(task_id)
            if killed is not None and pid != killed[1]:
                self.redelivery_seconds.append(time.monotonic() - killed[0])
                del self.killed_at[task_id]


@pytest.mark.parametrize(
    "chaos", ["redis", "redis-cluster", "redis-cluster-sharded", "local", "mongo"], indirect=True
)
def test_sigkill_storm_loses_nothing(chaos: Chaos) -> None:
    """Every pushed task completes at least once; duplicates stay within kills x batch size."""
    run_storm(chaos, prefetch=0)


@pytest.mark.parametrize("chaos", ["redis"], indirect=True)
def test_sigkill_storm_with_prefetch_loses_nothing(chaos: Chaos) -> None:
    """With prefetch 2 a worker holds three batches (two maybe in flight): still nothing lost."""
    run_storm(chaos, prefetch=2)


@pytest.mark.parametrize("chaos", ["redis"], indirect=True)
def test_sigkill_storm_with_one_task_pulls_and_default_prefetch_loses_nothing(
    chaos: Chaos,
) -> None:
    """One task per pull with the default prefetch (three pulls ahead on one Redis server)."""
    run_storm(chaos, prefetch=None, batch=1)


def run_storm(chaos: Chaos, prefetch: int | None, batch: int = BATCH) -> None:
    """Push, start the supervisor, kill busy workers, then check the ledger."""
    _seed, rng = seeded_random()
    size = SIZES[chaos.connector_config[0]]
    ahead = _prefetch.ONE_BY_ONE_PULLS_AHEAD if prefetch is None else prefetch
    held = (1 + ahead) * batch  # leases a worker may hold when it dies
    chaos.configure(
        lease=1, per_transaction=batch, prefetch="none" if prefetch is None else prefetch
    )
    pushed = chaos.push([{"ms": rng.randint(5, 50)} for _ in range(size)])
    supervisor = chaos.start_supervisor(WORKERS)
    storm = Storm(chaos, supervisor.pid, every=size // (KILLS + 3))
    wait_until(lambda: storm.step(supervisor), timeout=180, interval=0.01, message="8 kills")

    def all_done() -> bool:
        storm.note_redeliveries()
        return not chaos.check(pushed)[0]

    wait_until(all_done, timeout=180, message="every task to complete")
    wait_until(chaos.broker_is_empty, timeout=30, message="an empty queue")
    storm.note_redeliveries()
    lost, duplicated = chaos.check(pushed)
    print(
        f"storm on {chaos.connector_config[0]} (prefetch {prefetch}): {size} tasks, "
        f"{len(storm.kills)} kills, "
        f"lost {len(lost)}, duplicated {sum(n - 1 for n in duplicated.values())} "
        f"({sorted(duplicated)}), dead-lettered {chaos.connector.dead_count(QUEUE)}, "
        f"kill-to-redelivery seconds {[round(s, 2) for s in storm.redelivery_seconds]}"
    )
    assert lost == []
    assert len(storm.kills) >= KILLS
    assert sum(n - 1 for n in duplicated.values()) <= len(storm.kills) * held
    assert chaos.connector.dead_count(QUEUE) == 0
    assert supervisor.poll() is None  # the supervisor kept respawning
