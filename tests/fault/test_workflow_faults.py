"""Workflows under faults: the step after a group runs exactly once, with every
member's value in order, when workers are SIGKILLed mid-group or die between a
member's success and its acknowledgement. The ledger (one line per finished run,
written by the step itself) is the independent count."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from sergeant import workflow
from sergeant.killer.process import kill_tree
from tests.conftest import connector_params
from tests.fault.harness import kill, seeded_random
from tests.servers import wait_until
from tests.workers import flows

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
BROKERS = ["local", "redis", "mongo"]


def start(worker: str, env: dict[str, str], *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "sergeant.cli", "run", f"tests.workers.flows:{worker}", *extra],
        cwd=PROJECT_ROOT,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def ledger_runs(path: Path) -> collections.Counter[str]:
    """How many runs of each task id finished, from the ledger."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return collections.Counter()
    return collections.Counter(line.split()[1] for line in lines if line.startswith("done "))


def worker_pids(supervisor: subprocess.Popen[bytes]) -> list[int]:
    try:
        children = psutil.Process(supervisor.pid).children()
    except psutil.NoSuchProcess:
        return []
    return [child.pid for child in children if child.status() != psutil.STATUS_ZOMBIE]


def chord(size: int, ms: int) -> workflow.Chain:
    members = workflow.group(workflow.step("flow-a", {"v": i, "ms": ms}) for i in range(size))
    return workflow.chain(members, workflow.step("flow-b", {"v": "after"}))


def set_up(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[dict[str, str], Path]:
    """The workers' environment (a 2 s lease) for broker ``kind``, also set here, and
    the ledger's path."""
    connector_type, params = connector_params(request, kind, tmp_path)
    ledger = tmp_path / "ledger"
    env = {**flows.environment(connector_type, params, str(ledger)), "SERGEANT_TEST_LEASE": "2"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env, ledger


def check_once(producer: flows.StepsA, flow_id: str, size: int, ledger: Path) -> None:
    result = producer.get_result(flow_id, timeout=120)
    assert [value["v"] for value in result["prev"]] == list(range(size))
    runs = ledger_runs(ledger)
    assert runs[f"{flow_id}.{size}"] == 1, "the step after the group ran more than once"
    missing = [i for i in range(size) if runs[f"{flow_id}.{i}"] == 0]
    assert not missing, f"members never finished: {missing}"


@pytest.mark.parametrize("kind", BROKERS)
def test_a_sigkill_storm_in_a_group_fires_the_next_step_once(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Group of 500 (Mongo: 150) then one step; busy workers SIGKILLed 8 times."""
    size = 150 if kind == "mongo" else 500
    _, rng = seeded_random()
    env, ledger = set_up(kind, request, tmp_path, monkeypatch)
    producer = flows.StepsA()
    producer.init_broker()
    members = start("StepsA", env, "--workers", "3")
    after = start("StepsB", env)
    try:
        flow_id = producer.push_workflow(chord(size, ms=5))
        kills = 0
        deadline = time.monotonic() + 120
        while kills < 8 and time.monotonic() < deadline:
            done = sum(ledger_runs(ledger).values())
            if done >= (kills + 1) * size // 10:
                pids = worker_pids(members)
                if pids:
                    kill(rng.choice(pids), signal.SIGKILL)
                    kills += 1
            time.sleep(0.01)
        assert kills == 8, f"only {kills} kills before the group ended"
        check_once(producer, flow_id, size, ledger)
    finally:
        for process in (members, after):
            kill_tree(process.pid)
            process.wait(timeout=30)
        producer.close()


@pytest.mark.parametrize("kind", BROKERS)
def test_a_crash_between_success_and_acknowledgement_fires_the_next_step_once(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker that SIGKILLs itself before each acknowledgement (the members ran and
    advanced the workflow); clean workers then rerun them: one push of the next step."""
    size = 20
    env, ledger = set_up(kind, request, tmp_path, monkeypatch)
    producer = flows.StepsA()
    producer.init_broker()
    try:
        flow_id = producer.push_workflow(chord(size, ms=0))
        crashing = subprocess.Popen(
            [sys.executable, "-m", "sergeant.slave", "--worker-module", "tests.workers.flows",
             "--worker-class", "StepsA"],
            cwd=PROJECT_ROOT, env={**os.environ, **env, "SERGEANT_FAULT": "before_ack"},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        assert crashing.wait(timeout=60) == -signal.SIGKILL
        first = ledger_runs(ledger)
        assert first, "the crashing worker ran no member"
        members, after = start("StepsA", env), start("StepsB", env)
        try:
            check_once(producer, flow_id, size, ledger)
            # The crashed batch was never acknowledged: its members run again once
            # their lease expires, and advance the workflow again, which changes nothing.
            wait_until(
                lambda: all(ledger_runs(ledger)[task] >= 2 for task in first),
                timeout=60,
                message="the crashed batch to run again",
            )
            assert ledger_runs(ledger)[f"{flow_id}.{size}"] == 1
        finally:
            for process in (members, after):
                kill_tree(process.pid)
                process.wait(timeout=30)
    finally:
        producer.close()
