"""Workflows end to end: two worker classes on two queues, each in its own process
(``sergeant run``), on every broker that several processes share; and in memory.

A chain crosses the two queues, a group of 50 is followed by one step (a chord), and
a failing step fails the workflow; each is read back through ``get_result`` and
``workflow_status``."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import typing
from collections.abc import Iterator
from pathlib import Path

import pytest

from sergeant import workflow
from sergeant.errors import TaskFailed
from sergeant.killer.process import kill_tree
from tests.conftest import connector_params
from tests.workers import flows

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SHARED = ["local", "redis", "redis-2-nodes", "redis-cluster", "mongo", "mongo-2-nodes"]


@contextlib.contextmanager
def worker_processes(env: dict[str, str]) -> Iterator[None]:
    """``sergeant run`` for StepsA and for StepsB, stopped at the end."""
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "sergeant.cli", "run", f"tests.workers.flows:{name}"],
            cwd=PROJECT_ROOT,
            env={**os.environ, **env},
            stderr=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
        for name in ("StepsA", "StepsB")
    ]
    try:
        yield
    finally:
        for process in processes:
            kill_tree(process.pid)
            process.wait(timeout=30)


def check_flows(producer: flows.StepsA) -> None:
    """The three shapes of the issue, through get_result and workflow_status."""
    step = workflow.step
    chained = producer.push_workflow(
        workflow.chain(step("flow-a", {"v": 1}), step("flow-b", {"v": 2}), step("flow-a", {"v": 3}))
    )
    result = producer.get_result(chained, timeout=60)
    assert result["v"] == 3
    assert result["flow"] == chained
    assert result["prev"]["v"] == 2
    assert result["prev"]["prev"] == {"v": 1, "prev": None, "flow": chained}

    members = workflow.group(step("flow-a", {"v": i}) for i in range(50))
    chord = producer.push_workflow(workflow.chain(members, step("flow-b", {"v": "after"})))
    result = producer.get_result(chord, timeout=60)
    assert result["v"] == "after"
    assert [value["v"] for value in result["prev"]] == list(range(50))
    grouped = producer.push_workflow(
        workflow.group(step("flow-a", {"v": 1}), step("flow-b", {"v": 2}))
    )
    assert [value["v"] for value in producer.get_result(grouped, timeout=60)] == [1, 2]
    status = producer.workflow_status(chord)
    assert status.state == "succeeded"
    assert {s.state for s in status.steps} == {"succeeded"}
    assert len(status.steps) == 51

    failing = producer.push_workflow(
        workflow.chain(
            step("flow-a", {"v": 1}),
            step("flow-b", {"v": 2, "fail": True}),
            step("flow-a", {"v": 3}),
        )
    )
    with pytest.raises(TaskFailed) as raised:
        producer.get_result(failing, timeout=60)
    message = str(raised.value)
    assert f"{failing}.1" in message
    assert "'flow-b'" in message
    assert "told to fail" in message
    status = producer.workflow_status(failing)
    assert status.state == "failed"
    assert [s.state for s in status.steps] == ["succeeded", "failed", "never ran"]
    assert [s.queue for s in status.steps] == ["flow-a", "flow-b", "flow-a"]


@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.parametrize("kind", SHARED)
def test_workflows_across_two_worker_processes(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    connector_type, params = connector_params(request, kind, tmp_path)
    env = flows.environment(connector_type, params)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    producer = flows.StepsA()
    producer.init_broker()
    try:
        with worker_processes(env):
            check_flows(producer)
    finally:
        producer.close()


@pytest.mark.timeout(120)
def test_workflows_in_memory(memory_name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same in one process, both workers on threads, on the in-process broker."""
    for name, value in flows.environment("memory", {"name": memory_name}).items():
        monkeypatch.setenv(name, value)
    workers = [flows.StepsA(), flows.StepsB()]
    stop = threading.Event()

    def serve(worker: flows.StepsA | flows.StepsB) -> None:
        worker.config = worker.config.replace(max_tasks_per_run=20)
        while not stop.is_set():
            worker.work_loop()

    threads = [threading.Thread(target=serve, args=(w,), daemon=True) for w in workers]
    for worker in workers:
        worker.init_worker()
    for thread in threads:
        thread.start()
    try:
        check_flows(typing.cast(flows.StepsA, workers[0]))
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
