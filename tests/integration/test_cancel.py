"""``Worker.cancel`` with real worker processes (``sergeant run``): a waiting task never
runs, a running ``time.sleep`` task gets ``on_cancel``, a task holding the GIL has its
worker killed by the supervisor and a new one started, ``get_result`` raises
``TaskCancelled``, and a cancelled workflow runs no further step. The ledger (one
line per start, end and cancel, written by the tasks themselves) is the record."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from sergeant import workflow
from sergeant.errors import TaskCancelled
from sergeant.killer.process import kill_tree
from tests.conftest import connector_params
from tests.servers import wait_until
from tests.workers import flows

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def events(ledger: Path, event: str) -> list[tuple[str, int]]:
    """``(task id, pid)`` of every ``event`` line of the ledger."""
    try:
        lines = ledger.read_text().splitlines()
    except FileNotFoundError:
        return []
    return [(t, int(pid)) for e, t, pid in (line.split() for line in lines) if e == event]


@pytest.mark.parametrize("kind", ["local", "redis", "mongo"])
def test_cancel_waiting_running_stuck_and_workflow(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    connector_type, params = connector_params(request, kind, tmp_path)
    ledger = tmp_path / "ledger"
    env = {**flows.environment(connector_type, params, str(ledger)), "SERGEANT_TEST_LEASE": "3"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    producer = flows.StepsA()
    producer.init_broker()
    ready = producer.push_task({"v": "ready"})
    delayed = producer.push_task({"v": "delayed"}, consumable_from=time.time() + 3600)
    assert producer.cancel(ready)
    assert producer.cancel(delayed)
    for task_id in (ready, delayed):
        with pytest.raises(TaskCancelled):
            producer.get_result(task_id, timeout=10)
    assert producer.number_of_enqueued_tasks(include_delayed=True) == 0

    supervisor = subprocess.Popen(
        [sys.executable, "-m", "sergeant.cli", "run", "tests.workers.flows:StepsA"],
        cwd=PROJECT_ROOT, env={**os.environ, **env},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        sleeper = producer.push_task({"ms": 120_000})
        wait_until(lambda: events(ledger, "start"), timeout=60, message="the sleeper to start")
        assert producer.cancel(sleeper)
        wait_until(
            lambda: (sleeper, events(ledger, "start")[0][1]) in events(ledger, "cancelled"),
            timeout=30,
            message="on_cancel in the sleeper's worker",
        )
        with pytest.raises(TaskCancelled):
            producer.get_result(sleeper, timeout=10)

        flow_id = producer.push_workflow(
            workflow.chain(
                workflow.step("flow-a", {"ms": 120_000}), workflow.step("flow-a", {"v": "after"})
            )
        )
        first = f"{flow_id}.0"
        wait_until(
            lambda: any(t == first for t, _ in events(ledger, "start")), timeout=60,
            message="the workflow's first step to start",
        )  # fmt: skip
        assert producer.cancel(flow_id)
        with pytest.raises(TaskCancelled):
            producer.get_result(flow_id, timeout=10)
        wait_until(
            lambda: any(t == first for t, _ in events(ledger, "cancelled")), timeout=30,
            message="the first step stopped",
        )  # fmt: skip
        status = producer.workflow_status(flow_id)
        assert status.state == "failed"
        assert status.steps[1].state == "never ran"
        assert not any(t == f"{flow_id}.1" for t, _ in events(ledger, "start"))
    finally:
        kill_tree(supervisor.pid)
        supervisor.wait(timeout=30)
        producer.close()


def start_fleet(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "sergeant.cli", "run", "tests.workers.flows:StepsA"],
        cwd=PROJECT_ROOT, env={**os.environ, **env},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


@pytest.mark.parametrize("kind", ["local", "redis", "mongo"])
def test_cancel_a_task_holding_the_gil_kills_its_worker(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No thread of its process runs, so only the supervisor can stop it: at the grace
    period (1 s here) it kills the worker, records the cancel, and starts a new worker,
    which refuses the redelivered task and runs the next one."""
    connector_type, params = connector_params(request, kind, tmp_path)
    ledger = tmp_path / "ledger"
    env = {**flows.environment(connector_type, params, str(ledger)), "SERGEANT_TEST_LEASE": "30"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    producer = flows.StepsA()
    producer.init_broker()
    supervisor = start_fleet(env)
    try:
        stuck = producer.push_task({"gil_seconds": 600})
        wait_until(lambda: events(ledger, "start"), timeout=60, message="the stuck task to start")
        stuck_pid = events(ledger, "start")[0][1]
        assert producer.cancel(stuck)
        # Well before the 600 s the task holds the GIL, and the 30 s lease.
        with pytest.raises(TaskCancelled, match="its worker was killed"):
            producer.get_result(stuck, timeout=25)
        wait_until(lambda: not psutil.pid_exists(stuck_pid), timeout=30, message="the kill")
        after = producer.push_task({"v": "after"})
        wait_until(
            lambda: any(t == after for t, _ in events(ledger, "done")), timeout=60,
            message="the next task to run in a new worker",
        )  # fmt: skip
        starts = events(ledger, "start")
        assert [t for t, _ in starts].count(stuck) == 1  # never started again
        assert starts[-1][0] == after
        assert starts[-1][1] != stuck_pid
        assert (stuck, stuck_pid) not in events(ledger, "cancelled")  # nothing ran in it
    finally:
        kill_tree(supervisor.pid)
        supervisor.wait(timeout=30)
        producer.close()
