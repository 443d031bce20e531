"""Leases under pauses and long tasks: a stale owner is fenced, a live one is never robbed."""

from __future__ import annotations

import signal

import pytest

from tests.fault.harness import QUEUE, Chaos, kill
from tests.servers import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]


@pytest.mark.parametrize("chaos", ["redis"], indirect=True)
def test_stale_owner_ack_is_rejected_and_logged(chaos: Chaos) -> None:
    """A worker paused past its lease loses the task to another; its late ack is refused."""
    chaos.configure(lease=1)
    [task_id] = chaos.push([{"ms": 1500}])
    first = chaos.start_worker()
    wait_until(lambda: chaos.starts(), timeout=30, message="the first worker to start the task")
    kill(first.pid, signal.SIGSTOP)
    try:
        second = chaos.start_worker()
        wait_until(
            lambda: any(pid == second.pid for _, _, pid in chaos.done()),
            timeout=30,
            message="the second worker to complete the task",
        )
    finally:
        kill(first.pid, signal.SIGCONT)
    wait_until(
        lambda: "acknowledgements were rejected" in Chaos.stderr(first),
        timeout=30,
        message="the paused worker to log its rejected ack",
    )
    runs = sorted((attempt, pid) for tid, attempt, pid in chaos.done() if tid == task_id)
    print(f"stale owner: runs (attempt, pid) {runs}; first {first.pid}, second {second.pid}")
    assert runs == [(1, first.pid), (2, second.pid)]
    wait_until(chaos.broker_is_empty, timeout=30, message="an empty queue")
    assert chaos.connector.dead_count(QUEUE) == 0


@pytest.mark.parametrize("chaos", ["redis", "local", "mongo"], indirect=True)
def test_task_longer_than_several_leases_runs_once(chaos: Chaos) -> None:
    """Heartbeats renew the lease of a running task: no other worker takes it over."""
    chaos.configure(lease=1)
    [task_id] = chaos.push([{"ms": 3500}])
    chaos.start_worker()
    chaos.start_worker()  # would steal the task if its lease ever ran out
    wait_until(lambda: chaos.runs()[task_id] == 1, timeout=30, message="the task to complete")
    wait_until(chaos.broker_is_empty, timeout=30, message="the ack")
    assert [tid for tid, _, _ in chaos.starts()] == [task_id]
    assert chaos.runs()[task_id] == 1
