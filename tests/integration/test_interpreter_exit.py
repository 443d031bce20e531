"""No thread the library starts keeps a process alive: workers never closed, the process exits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import connector_params

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
#: Generous: the loops take a few seconds; a process kept alive by a thread never exits.
EXIT_TIMEOUT_SECONDS = 60


def test_a_process_whose_workers_are_never_closed_exits_by_itself(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Serial, threaded and interrupted loops on SQLite, Redis and Mongo; nothing closed."""
    brokers = [connector_params(request, kind, tmp_path) for kind in ("local", "redis", "mongo")]
    process = subprocess.run(
        [sys.executable, "-m", "tests.workers.unclosed", json.dumps(brokers)],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        capture_output=True,
        text=True,
        timeout=EXIT_TIMEOUT_SECONDS,
    )
    assert process.returncode == 0, process.stderr
    assert "9 loops ended" in process.stdout, process.stderr
