"""``--metrics-port``: the supervisor serves its workers' metrics and the queue's depths."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import psutil
import pytest

from tests.servers import RedisServer, free_port, wait_until
from tests.workers.ops import OpsWorker

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def scrape(port: int) -> dict[str, float]:
    """The samples of ``/metrics`` as ``{'name{labels}': value}``."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples = {}
    for line in text.splitlines():
        match = re.match(r"^([a-z_]+(?:\{[^}]*\})?) (\S+)$", line)
        if match:
            samples[match.group(1)] = float(match.group(2))
    return samples


def value(samples: dict[str, float], name: str, **labels: str) -> float:
    """The sample ``name`` whose labels include ``labels`` (0 when absent)."""
    for key, sample in samples.items():
        if key.split("{")[0] == name and all(f'{k}="{v}"' in key for k, v in labels.items()):
            return sample
    return 0.0


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_metrics_port_serves_task_counters_and_queue_depths(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Counters move as two workers run tasks; the depth gauges match the broker."""
    redis_server.flush()
    env = {"SERGEANT_TEST_BROKER_URL": redis_server.url, "SERGEANT_TEST_QUEUE": "metered"}
    for name, setting in env.items():
        monkeypatch.setenv(name, setting)
    producer = OpsWorker()
    producer.init_broker()
    producer.push_tasks([{"value": i} for i in range(20)])
    producer.push_tasks([{"fail": "x"}] * 5)
    producer.push_tasks([{}] * 7, consumable_from=4102444800.0)  # year 2100: stays delayed
    port = free_port()
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "sergeant.supervisor", "--worker-module", "tests.workers.ops",
         "--worker-class", "OpsWorker", "--concurrent-workers", "2", "--metrics-port", str(port)],
        cwd=PROJECT_ROOT, env={**os.environ, **env}, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:

        def settled() -> bool:
            samples = scrape(port)
            return (
                value(samples, "sergeant_tasks_total", queue="metered", outcome="success") == 20
                and value(samples, "sergeant_tasks_total", queue="metered", outcome="failure") == 5
                and value(samples, "sergeant_workers_live", queue="metered") == 2
            )

        wait_until(settled, timeout=60, interval=0.2, message="the counters to reach 20 and 5")
        samples = scrape(port)
        assert value(samples, "sergeant_queue_tasks", queue="metered", state="delayed") == 7
        assert value(samples, "sergeant_queue_tasks", queue="metered", state="ready") == 0
        assert value(samples, "sergeant_task_duration_seconds_count", queue="metered") == 25
        assert value(samples, "sergeant_broker_up") == 1
        producer.push_tasks([{"value": 1}] * 4)
        wait_until(
            lambda: value(scrape(port), "sergeant_tasks_total", outcome="success") == 24,
            timeout=30,
            message="the counter to move again",
        )
    finally:
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=30) == 0
        producer.close()


def listening_addresses(pid: int, port: int) -> set[str]:
    """The addresses process ``pid`` listens on at TCP ``port``."""
    return {
        connection.laddr.ip
        for connection in psutil.Process(pid).net_connections(kind="tcp")
        if connection.status == psutil.CONN_LISTEN and connection.laddr.port == port
    }


@pytest.mark.slow
@pytest.mark.timeout(90)
@pytest.mark.parametrize(
    ("command", "host_args", "expected"),
    [
        (["-m", "sergeant.cli", "run", "tests.workers.ops:OpsWorker"], [], "127.0.0.1"),
        (
            ["-m", "sergeant.supervisor", "--worker-module", "tests.workers.ops",
             "--worker-class", "OpsWorker"],
            ["--metrics-host", "0.0.0.0"],
            "0.0.0.0",
        ),
    ],
    ids=["run-default-loopback", "supervisor-any-interface"],
)  # fmt: skip
def test_metrics_listen_on_loopback_unless_told_otherwise(
    tmp_path: Path, command: list[str], host_args: list[str], expected: str
) -> None:
    """The metrics bind 127.0.0.1 by default, and the address --metrics-host gives otherwise."""
    port = free_port()
    env = {**os.environ, "SERGEANT_TEST_BROKER_URL": f"sqlite:///{tmp_path}/b.sqlite3"}
    process = subprocess.Popen(
        [sys.executable, *command, "--metrics-port", str(port), *host_args],
        cwd=PROJECT_ROOT, env=env, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_until(
            lambda: bool(listening_addresses(process.pid, port)),
            timeout=30,
            message=f"the metrics to listen on port {port}",
        )
        assert listening_addresses(process.pid, port) == {expected}
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
