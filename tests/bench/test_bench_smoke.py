"""The benchmark harness itself: a tiny N, Sergeant only, no peers installed, no timing asserts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.libraries import WORKLOADS_BY_NAME

PROJECT_DIR = Path(__file__).resolve().parents[2]
N = 200
MEMORY_N = 2_000


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_harness_runs_every_sergeant_workload_and_verifies_counts(tmp_path: Path) -> None:
    """`python -m bench --no-peers` runs every Sergeant workload, checks counts, writes reports."""
    command = [
        sys.executable, "-m", "bench", "--libraries", "sergeant,redis-py", "--no-peers",
        "--n", str(N), "--push-one-n", str(N), "--latency-n", "50", "--memory-n", str(MEMORY_N),
        "--rounds", "1", "--no-chart", "--output", str(tmp_path),
    ]  # fmt: skip
    completed = subprocess.run(
        command, cwd=PROJECT_DIR, capture_output=True, text=True, timeout=280
    )
    assert completed.returncode == 0, completed.stderr[-3000:]

    document = json.loads((tmp_path / "latest.json").read_text())
    ours = document["summary"]["sergeant"]
    expected = {
        "push_one", "push_bulk", "consume_one", "consume_batched", "consume_batched_amo",
        "consume_procs_1", "consume_procs_2", "consume_procs_4", "latency", "idle_rss",
        "memory_flat", "progress_off", "progress_on", "consume_batched_groups",
    }  # fmt: skip
    assert expected <= set(ours)
    assert set(ours) <= set(WORKLOADS_BY_NAME)
    for run in document["runs"]:
        assert run["ok"], run
        if run["workload"] == "idle_rss":
            assert run["extra"]["rss_mb"] > 0
        elif run["workload"] == "memory_flat":
            assert run["distinct"] == run["n"] == run["extra"]["executions"] == MEMORY_N
            assert run["extra"]["sample_every"] == MEMORY_N // 10
            assert len(run["extra"]["rss_samples_mib"]) == 10
            assert "growth_bytes_per_task" in run["extra"]
        elif run["workload"].startswith("progress"):  # tasks of 10,000 steps, whatever --n
            assert run["distinct"] == run["n"] > 0
            if run["workload"] == "progress_on":
                assert run["extra"]["overhead_ratio"] > 0
        elif run["workload"] == "latency":
            assert run["distinct"] == run["n"] == 50
        else:
            assert run["distinct"] == run["n"] == N
    assert {"push_bulk", "push_pipelined", "consume_batched"} <= set(
        document["summary"]["redis-py"]
    )
    page = (tmp_path / "benchmarks.md").read_text()
    assert "## Targets" in page
    assert "bench/run" in page
    assert f"memory growth over {MEMORY_N:,} tasks" in page
    assert "set_progress at each of 10,000 steps" in page
    assert "memory_flat" not in document["summary"]["redis-py"]
