"""``sergeant run``: its help, and a real session processing tasks."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from sergeant.cli import main
from sergeant.killer.process import kill_tree
from tests.servers import wait_until
from tests.workers.scenario import ScenarioWorker, environment, read_ledger

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def test_run_help_explains_with_an_example() -> None:
    """``sergeant run --help`` says what WORKER is and shows a runnable example."""
    result = CliRunner().invoke(main, ["run", "--help"])
    assert result.exit_code == 0
    assert "module:Class" in result.output
    assert "sergeant run my_app.workers:Crawler --workers 4 --max-memory 512MB" in result.output


def test_run_rejects_a_worker_without_a_class() -> None:
    """A WORKER without ':Class' is a usage error that shows the expected form."""
    result = CliRunner().invoke(main, ["run", "tests.workers.counter"])
    assert result.exit_code == 2
    assert "module:Class" in result.output


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_run_session_processes_tasks_with_two_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``sergeant run tests.workers.counter:Worker --workers 2`` runs every task, then stops."""
    ledger = str(tmp_path / "ledger")
    env = environment(str(tmp_path / "b.sqlite3"), ledger, max_tasks=10)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    producer = ScenarioWorker()
    producer.init_broker()
    producer.push_tasks([{"tag": f"t{i}"} for i in range(30)])
    command = [sys.executable, "-m", "sergeant.cli", "run", "tests.workers.counter:Worker"]
    process = subprocess.Popen(
        [*command, "--workers", "2", "--max-memory", "512MB"],
        cwd=PROJECT_ROOT,
        env={**os.environ, **env},
        stderr=subprocess.DEVNULL,
    )

    def done() -> dict[str, int]:
        return {tag: pid for event, tag, pid in read_ledger(ledger) if event == "done"}

    try:
        wait_until(lambda: len(done()) == 30, timeout=60, message="30 tasks done")
        assert len(collections.Counter(done().values())) >= 3
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            kill_tree(process.pid)
            process.wait()
