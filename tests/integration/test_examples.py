"""Every file in ``examples/`` runs as ``python examples/X.py`` and prints what its docs show.

Each example runs in a subprocess against a private broker: the SQLite ones get a
temp directory of their own (``TMPDIR``, where the default broker file lives), the
Redis one the session's private ``redis-server``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import RedisServer

PROJECT_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = PROJECT_ROOT / "examples"
TIMEOUT_SECONDS = 60


def run_example(name: str, tmp_path: Path, extra_env: dict[str, str] | None = None) -> str:
    """Run ``examples/<name>`` to completion; return its stdout, failing on a non-zero exit."""
    env = {**os.environ, "TMPDIR": str(tmp_path), **(extra_env or {})}
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )
    assert result.returncode == 0, f"{name} exited {result.returncode}:\n{result.stderr}"
    return result.stdout


def test_every_example_has_a_test() -> None:
    """Each example file is run by a test in this module."""
    tested = {"quickstart.py", "retries.py", "delayed_and_priority.py", "redis_worker.py"}
    present = {path.name for path in EXAMPLES.glob("*.py") if path.name != "__init__.py"}
    assert present == tested


def test_quickstart_round_trip(tmp_path: Path) -> None:
    """The quick start pushes three tasks and its worker greets each one, then ends."""
    output = run_example("quickstart.py", tmp_path)
    assert output.splitlines() == ["hello, user-0", "hello, user-1", "hello, user-2", "ran 3 tasks"]


def test_quickstart_push_command(tmp_path: Path) -> None:
    """``quickstart.py push N`` only pushes, for ``sergeant run`` to pick up."""
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "quickstart.py"), "push", "5"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "pushed 5 tasks; 5 waiting"


def test_retries_succeed_then_dead_letter(tmp_path: Path) -> None:
    """A flaky task succeeds on retry; one that keeps failing is dead-lettered at max_retries."""
    output = run_example("retries.py", tmp_path)
    assert "flaky succeeded after 1 retries" in output
    assert "broken gave up after 2 retries" in output
    assert "dead tasks: 1" in output
    assert "dead: broken (reason: max retries, deliveries: 1)" in output


def test_delayed_and_priority_order(tmp_path: Path) -> None:
    """HIGH runs first, NORMAL in push order, and the delayed task only once due."""
    output = run_example("delayed_and_priority.py", tmp_path)
    lines = output.splitlines()
    assert lines[0] == "3 ready, 4 with the delayed one"
    assert [line.split(" after ")[0] for line in lines[1:]] == [
        "ran urgent",
        "ran normal-1",
        "ran normal-2",
        "ran delayed",
    ]
    delayed_after = float(lines[4].split(" after ")[1].rstrip("s"))
    assert delayed_after >= 0.9


def test_redis_worker_round_trip(redis_server: RedisServer, tmp_path: Path) -> None:
    """The Redis example pushes 1000 tasks in one batch and runs them all on the given server."""
    redis_server.flush()
    output = run_example(
        "redis_worker.py",
        tmp_path,
        {
            "SERGEANT_EXAMPLE_REDIS_HOST": "127.0.0.1",
            "SERGEANT_EXAMPLE_REDIS_PORT": str(redis_server.port),
        },
    )
    assert "pushed 1000 tasks in one batch" in output
    assert "ran 1000 tasks; sum of squares: 332833500" in output


def test_redis_worker_takes_a_url(redis_server: RedisServer, tmp_path: Path) -> None:
    """The Redis example also finds its server through ``SERGEANT_EXAMPLE_REDIS_URL``."""
    redis_server.flush()
    output = run_example(
        "redis_worker.py", tmp_path, {"SERGEANT_EXAMPLE_REDIS_URL": redis_server.url}
    )
    assert "ran 1000 tasks; sum of squares: 332833500" in output


@pytest.mark.parametrize("name", ["retries.py", "delayed_and_priority.py", "redis_worker.py"])
def test_example_documents_how_to_run_it(name: str) -> None:
    """Each example's docstring says how to run it."""
    text = (EXAMPLES / name).read_text(encoding="utf-8")
    assert f"python examples/{name}" in text
