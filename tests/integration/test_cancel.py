"""``Worker.cancel`` with real worker processes (``sergeant run``): a waiting task never
runs, a running ``time.sleep`` task gets ``on_cancel``, ``get_result`` raises
``TaskCancelled``, and a cancelled workflow runs no further step. The ledger (one
line per start, end and cancel, written by the tasks themselves) is the record."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

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
