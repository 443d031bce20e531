"""The supervisor with real worker processes, real signals and a ledger of executions."""

from __future__ import annotations

import collections
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from sergeant.killer.process import kill_tree
from tests.servers import wait_until
from tests.workers.scenario import ScenarioWorker, environment, read_ledger

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class Fleet:
    """A ``python -m sergeant.supervisor`` process over the scenario workers of one test."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.ledger = str(tmp_path / "ledger")
        self.broker = str(tmp_path / "b.sqlite3")
        self.stderr_path = tmp_path / "stderr"
        self.process: subprocess.Popen[bytes] | None = None
        self.env: dict[str, str] = {}

    def configure(self, **settings: object) -> None:
        """Set the scenario (SERGEANT_TEST_*) for the workers and for pushing."""
        self.env = environment(self.broker, self.ledger, **settings)

    def push(self, kwargs_list: list[dict[str, object]]) -> None:
        with pytest.MonkeyPatch.context() as patch:
            for name, value in self.env.items():
                patch.setenv(name, value)
            worker = ScenarioWorker()
            worker.init_broker()
            worker.push_tasks(kwargs_list)
            self.enqueued = worker.number_of_enqueued_tasks

    def start(self, worker_class: str = "ScenarioWorker", *args: str) -> None:
        command = [sys.executable, "-m", "sergeant.supervisor", "--log-level", "INFO"]
        command += ["--worker-module", "tests.workers.scenario", "--worker-class", worker_class]
        with open(self.stderr_path, "wb") as stderr:
            self.process = subprocess.Popen(
                [*command, *args], cwd=PROJECT_ROOT, env={**os.environ, **self.env}, stderr=stderr
            )

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def ledger_lines(self) -> list[tuple[str, str, int]]:
        return read_ledger(self.ledger)

    def done(self) -> dict[str, int]:
        """Tag -> pid of every task that completed."""
        return {tag: pid for event, tag, pid in self.ledger_lines() if event == "done"}

    def terminate(self) -> float:
        """SIGTERM the supervisor and wait for it to exit; returns seconds it took."""
        assert self.process is not None
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=60)
        return time.monotonic() - started

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            kill_tree(self.process.pid)
            self.process.wait()


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    """A supervisor for this test, killed with its workers at teardown."""
    fleet = Fleet(tmp_path)
    yield fleet
    fleet.close()


def _normal_tasks(count: int) -> list[dict[str, object]]:
    return [{"tag": f"t{i}"} for i in range(count)]


def test_gil_holding_poison_task_is_killed_and_the_queue_goes_on(fleet: Fleet) -> None:
    """A task blocking signals in C code holding the GIL: killed at T+G, respawned, queue drains."""
    fleet.configure(timeout=1, grace=1)
    fleet.push([{"action": "gil_poison", "tag": "poison"}, *_normal_tasks(20)])
    fleet.start()
    wait_until(lambda: len(fleet.done()) >= 21, timeout=60, message="the queue to drain")
    poisoned_pid = next(pid for event, tag, pid in fleet.ledger_lines() if tag == "poison")
    assert not psutil.pid_exists(poisoned_pid) or psutil.Process(poisoned_pid).status() == "zombie"
    assert all(pid != poisoned_pid for pid in fleet.done().values())
    assert "killed by SIGKILL" in fleet.stderr


def test_threaded_catastrophic_regex_replaces_the_worker(fleet: Fleet) -> None:
    """A regex holding the GIL in an executor thread ends with the worker replaced."""
    fleet.configure(timeout=1, grace=1)
    fleet.push([{"action": "regex", "tag": "regex"}, *_normal_tasks(6)])
    fleet.start("ThreadedScenarioWorker")
    wait_until(lambda: len(fleet.done()) >= 7, timeout=60, message="the queue to drain")
    regex_pid = next(pid for event, tag, pid in fleet.ledger_lines() if tag == "regex")
    assert fleet.done()["regex"] != regex_pid  # its first run died with its worker
    assert "killed by SIGKILL" in fleet.stderr


def test_memory_hog_is_replaced_while_its_task_runs(fleet: Fleet) -> None:
    """A task growing past max_worker_memory_usage gets its worker killed and replaced."""
    fleet.configure()
    fleet.push([{"action": "memory_hog", "tag": "hog"}, *_normal_tasks(5)])
    fleet.start("ScenarioWorker", "--max-worker-memory-usage", str(200 * 1024 * 1024))
    wait_until(lambda: len(fleet.done()) >= 6, timeout=60, message="the queue to drain")
    hog_pid = next(pid for event, tag, pid in fleet.ledger_lines() if tag == "hog")
    assert fleet.done()["hog"] != hog_pid
    assert "over the memory limit" in fleet.stderr


def test_sigterm_stops_the_fleet_gracefully_and_loses_nothing(fleet: Fleet) -> None:
    """SIGTERM while busy: exits, leaves no process behind, unstarted tasks stay queued."""
    fleet.configure(timeout=30, grace=5, per_transaction=5)
    tasks = [{"action": "sleep", "seconds": 0.3, "tag": f"t{i}"} for i in range(40)]
    fleet.push(tasks)
    fleet.start("ScenarioWorker", "--concurrent-workers", "2")
    assert fleet.process is not None
    supervisor = psutil.Process(fleet.process.pid)
    wait_until(lambda: len(fleet.ledger_lines()) >= 4, timeout=30, message="workers busy")
    wait_until(
        lambda: len(supervisor.children(recursive=True)) >= 4, message="2 workers, 2 watchdogs"
    )
    descendants = supervisor.children(recursive=True)
    took = fleet.terminate()
    print(f"supervisor exited {took:.2f}s after SIGTERM (grace period 5s)")
    assert fleet.process.returncode == 0
    wait_until(
        lambda: not any(process.is_running() for process in descendants),
        timeout=10,
        message="no worker or watchdog left",
    )
    started = {tag for event, tag, _ in fleet.ledger_lines() if event == "start"}
    done = set(fleet.done())
    assert started == done  # the running tasks finished within the grace period
    assert len(done) + fleet.enqueued() == len(tasks)


def test_max_tasks_per_run_respawns_workers(fleet: Fleet) -> None:
    """max_tasks_per_run=10, 100 tasks, 2 workers: all run, >= 10 pids, <= 10 tasks each."""
    fleet.configure(max_tasks=10)
    fleet.push(_normal_tasks(100))
    fleet.start("ScenarioWorker", "--concurrent-workers", "2")
    wait_until(lambda: len(fleet.done()) >= 100, timeout=80, message="100 tasks done")
    per_pid = collections.Counter(fleet.done().values())
    assert len(per_pid) >= 10
    assert max(per_pid.values()) <= 10


@pytest.mark.parametrize("worker_class", ["ScenarioWorker", "ThreadedScenarioWorker"])
def test_stop_from_a_task_ends_the_supervisor(fleet: Fleet, worker_class: str) -> None:
    """A task calling stop(): on_stop is called and the supervisor exits by itself."""
    fleet.configure(timeout=30, grace=5)
    fleet.push([*_normal_tasks(3), {"action": "stop", "tag": "stopper"}])
    fleet.start(worker_class, "--concurrent-workers", "2")
    assert fleet.process is not None
    fleet.process.wait(timeout=60)
    assert fleet.process.returncode == 0
    assert ("on_stop", "stopper") in {(event, tag) for event, tag, _ in fleet.ledger_lines()}


@pytest.mark.parametrize(
    ("module", "worker_class", "sentence"),
    [
        ("tests.workers.does_not_exist", "Worker", "Cannot import worker module"),
        ("tests.workers.scenario", "NoSuchWorker", "has no class 'NoSuchWorker'"),
        ("tests.workers.broken", "InMemoryWorker", "supervised worker processes cannot share"),
    ],
)
def test_unimportable_worker_exits_with_one_sentence(
    tmp_path: Path, module: str, worker_class: str, sentence: str
) -> None:
    """A missing module or class, or a broker no other process can see: non-zero exit,
    one clear sentence on stderr after the INFO lifecycle lines (the default level, as
    0.27), no traceback."""
    result = subprocess.run(
        [sys.executable, "-m", "sergeant.supervisor", "--worker-module", module,
         "--worker-class", worker_class, "--concurrent-workers", "2"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode != 0
    *lifecycle, last = result.stderr.strip().splitlines()
    assert all("sergeant-supervisor worker" in line for line in lifecycle), result.stderr
    assert "Traceback" not in result.stderr
    assert sentence in last
    assert last.endswith(".")


def test_worker_crashing_at_start_up_is_respawned_with_backoff(fleet: Fleet) -> None:
    """A worker that fails at start-up again and again is respawned after growing delays."""
    fleet.configure()
    with open(fleet.stderr_path, "wb") as stderr:
        fleet.process = subprocess.Popen(
            [sys.executable, "-m", "sergeant.supervisor", "--log-level", "INFO",
             "--worker-module", "tests.workers.broken", "--worker-class", "CrashingWorker"],
            cwd=PROJECT_ROOT, stderr=stderr,
        )  # fmt: skip
    wait_until(lambda: "respawning in 1.0s" in fleet.stderr, timeout=30, message="backoff")
    assert fleet.stderr.count("started (pid") <= 4
    assert "respawning in 0.5s" in fleet.stderr
    fleet.terminate()


def test_threads_left_behind_are_named_and_do_not_hang_the_worker(fleet: Fleet) -> None:
    """A task leaves a thread that refuses to stop: it is reported, the worker still ends."""
    fleet.configure(max_tasks=1)
    fleet.push([{"action": "leak_thread", "tag": "leak"}, *_normal_tasks(1)])
    fleet.start()
    wait_until(lambda: len(fleet.done()) >= 2, timeout=30, message="both tasks done")
    wait_until(lambda: "stubborn-leftover" in fleet.stderr, timeout=10, message="the report")
    with contextlib.suppress(Exception):
        fleet.terminate()
