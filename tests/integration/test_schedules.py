"""Schedules across processes: three supervisors of one worker (each with its own
scheduler) on a real broker push every tick exactly once, also when one of them is
killed with SIGKILL mid-run. The tasks write an independent ledger of their
``scheduled_for``; the test counts each tick of the window in it."""

from __future__ import annotations

import collections
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from click.testing import CliRunner

from sergeant.broker import Broker
from sergeant.cli import main as cli
from sergeant.config import Connector, Schedule
from sergeant.connector import create
from sergeant.encoder import Encoder
from sergeant.killer.process import kill_tree
from sergeant.process.scheduler import MAX_SLEEP_SECONDS, Scheduler
from tests.conftest import connector_params
from tests.servers import wait_until
from tests.workers.scheduled import QUEUE, read_ticks

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
#: Seconds the first scheduler may take to start pushing.
START_SECONDS = 30.0


class Fleet:
    """Supervisors of ``ScheduledWorker``, each with one worker process."""

    def __init__(self, tmp_path: Path, connector: tuple[str, dict[str, object]]) -> None:
        self.ledger = str(tmp_path / "ledger")
        self.tmp_path = tmp_path
        kind, params = connector
        self.env = {
            **os.environ,
            "SERGEANT_TEST_CONNECTOR": json.dumps({"type": kind, "params": params}),
            "SERGEANT_TEST_LEDGER": self.ledger,
            "SERGEANT_TEST_CRON": "* * * * *",
        }
        self.processes: list[subprocess.Popen[bytes]] = []
        self.children: set[int] = set()

    def start(self, count: int) -> None:
        for index in range(count):
            command = [sys.executable, "-m", "sergeant.supervisor", "--log-level", "INFO"]
            command += ["--worker-module", "tests.workers.scheduled"]
            command += ["--worker-class", "ScheduledWorker", "--concurrent-workers", "1"]
            with open(self.tmp_path / f"stderr-{index}", "wb") as stderr:
                self.processes.append(
                    subprocess.Popen(command, cwd=PROJECT_ROOT, env=self.env, stderr=stderr)
                )

    def stderr(self, index: int) -> str:
        return (self.tmp_path / f"stderr-{index}").read_text(errors="replace")

    def remember_children(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                self.children |= {c.pid for c in psutil.Process(process.pid).children(True)}

    def close(self) -> None:
        self.remember_children()
        for process in self.processes:
            if process.poll() is None:
                kill_tree(process.pid)
            process.wait()
        for pid in self.children:  # the workers of a supervisor killed with SIGKILL
            if psutil.pid_exists(pid):
                kill_tree(pid)


@pytest.fixture(params=["local", "redis", "mongo"])
def fleet(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Fleet]:
    fleet = Fleet(tmp_path, connector_params(request, request.param, tmp_path))
    yield fleet
    fleet.close()


def counts(fleet: Fleet, name: str) -> collections.Counter[float]:
    """Per tick of schedule ``name``, how many distinct tasks ran for it: a tick pushed
    twice counts 2 (each scheduler makes its own task id); a task run again because
    its worker died before acknowledging it counts once."""
    rows = read_ticks(fleet.ledger)
    pushed = {(tick, task_id) for schedule, tick, task_id in rows if schedule == name}
    return collections.Counter(tick for tick, _ in pushed)


def test_three_supervisors_push_each_tick_once_through_a_sigkill(fleet: Fleet) -> None:
    fleet.start(3)
    wait_until(
        lambda: all("started (pid" in fleet.stderr(i) for i in range(3)),
        timeout=START_SECONDS, message="three supervisors with their workers",
    )  # fmt: skip
    wait_until(lambda: len(counts(fleet, "every")) >= 2, START_SECONDS, message="the first ticks")
    fleet.remember_children()
    begin = math.ceil(time.time()) + 1.0  # every scheduler runs from here on
    # A window holding a minute boundary (the cron line's tick), and at least 12 s.
    minute = math.ceil((begin + 1) / 60) * 60
    end = max(begin + 12, minute + 4)
    kill_at = begin + 5
    while time.time() < kill_at:
        time.sleep(min(0.05, max(kill_at - time.time(), 0)))  # the kill lands on a tick
    fleet.processes[0].send_signal(signal.SIGKILL)
    fleet.processes[0].wait()
    wait_until(lambda: time.time() > end + 1, timeout=end - time.time() + 30, message="the window")
    expected = [float(t) for t in range(int(begin), int(end) + 1)]
    wait_until(
        lambda: all(counts(fleet, "every")[t] for t in expected) and counts(fleet, "cron")[minute],
        timeout=30, message="every tick of the window run",
    )  # fmt: skip
    every, cron = counts(fleet, "every"), counts(fleet, "cron")
    assert [t for t in expected if every[t] != 1] == []
    assert {t: n for t, n in every.items() if n != 1} == {}  # none doubled, in or out
    assert cron[float(minute)] == 1
    assert {t: n for t, n in cron.items() if n != 1} == {}
    assert all(t % 60 == 0 for t in cron)
    # The survivors' record of the schedules, read by the command line.
    target = "tests.workers.scheduled:ScheduledWorker"
    env = {k: fleet.env[k] for k in ("SERGEANT_TEST_CONNECTOR", "SERGEANT_TEST_LEDGER")}
    result = CliRunner().invoke(cli, ["schedules", "-b", target, "--json"], env=env)
    assert result.exit_code == 0, result.output
    records = {r["schedule"]: r for r in json.loads(result.output)["schedules"]}
    assert set(records) == {"every", "cron"}
    assert records["every"]["queue"] == QUEUE
    assert records["every"]["last_tick"] >= end
    assert records["cron"]["next_tick"] % 60 == 0
    result = CliRunner().invoke(cli, ["stats", "-b", target, "--json"], env=env)
    assert result.exit_code == 0, result.output
    assert {r["schedule"] for r in json.loads(result.output)["schedules"]} == {"every", "cron"}


def test_sergeant_schedule_pushes_ticks_without_workers(tmp_path: Path) -> None:
    """A scheduler alone fills the queue with one task per tick; SIGTERM stops it."""
    broker = tmp_path / "b.sqlite3"
    params: dict[str, object] = {"file_path": str(broker)}
    connector = {"type": "local", "params": params}
    env = {**os.environ, "SERGEANT_TEST_CONNECTOR": json.dumps(connector)}
    env["SERGEANT_TEST_LEDGER"] = str(tmp_path / "ledger")
    command = [sys.executable, "-m", "sergeant.cli", "schedule"]
    with open(tmp_path / "stderr", "wb") as stderr:
        process = subprocess.Popen(
            [*command, "tests.workers.scheduled:ScheduledWorker"],
            cwd=PROJECT_ROOT, env=env, stderr=stderr,
        )  # fmt: skip
    try:
        reader = Broker.from_config(Connector(type="local", params=params))
        wait_until(
            lambda: broker.exists() and reader.connector.length(QUEUE) >= 3, 30, 0.2, "3 ticks"
        )
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
        tasks = reader.pop_tasks(QUEUE, 1000)
        every = [t.scheduled_for for t in tasks if t.kwargs == {"s": "every"}]
        assert len(every) == len(set(every)) >= 3
        assert all(t is not None and t == int(t) for t in every)
        reader.close()
    finally:
        if process.poll() is None:
            kill_tree(process.pid)
            process.wait()
    assert not read_ticks(str(tmp_path / "ledger"))  # no worker ran


def test_sergeant_schedule_names_a_class_without_schedules(tmp_path: Path) -> None:
    env = {"SERGEANT_TEST_BROKER": str(tmp_path / "b.sqlite3"), "SERGEANT_TEST_LEDGER": "-"}
    target = "tests.workers.scenario:ScenarioWorker"
    result = CliRunner().invoke(cli, ["schedule", target], env=env)
    assert result.exit_code != 0
    assert "has no schedules" in result.output
    result = CliRunner().invoke(cli, ["schedule", "no_colon"])
    assert "module:Class" in result.output


def test_a_refusing_broker_is_not_busy_polled_and_the_tick_stays_due(tmp_path: Path) -> None:
    """A closed connector (every call refused): the next wake is a second away, not
    now; once a broker answers, the tick still within its lateness is pushed."""
    path = str(tmp_path / "b.sqlite3")
    refusing = Broker(create("local", {"file_path": path}), Encoder())
    scheduler = Scheduler(refusing, "q", [Schedule(every_seconds=1)])
    scheduler.begin(5990.0)  # 5986 to 5990: within LATE_SECONDS
    refusing.connector.close()
    assert scheduler.step(5991.2) >= 5991.2 + MAX_SLEEP_SECONDS  # 5991 refused
    scheduler.broker = answering = Broker(create("local", {"file_path": path}), Encoder())
    scheduler.step(5992.5)
    ticks = sorted(t.scheduled_for or 0 for t in answering.pop_tasks("q", 100))
    assert ticks == [float(t) for t in range(5986, 5993)]
    answering.close()
