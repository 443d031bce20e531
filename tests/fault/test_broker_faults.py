"""The broker goes away: restarted under load, or absent at start."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import typing
from collections.abc import Iterator
from pathlib import Path

import pytest

from sergeant.errors import ConnectorError
from tests.fault.harness import PROJECT_ROOT, QUEUE, WORKER, Chaos
from tests.servers import RedisServer, free_port, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]

RESTARTS = 3


@pytest.fixture
def durable_redis() -> Iterator[RedisServer]:
    """A private redis-server that fsyncs every write, restartable in place."""
    server = RedisServer(
        extra_args=["--appendonly", "yes", "--appendfsync", "always", "--save", ""]
    )
    server.start()
    yield server
    server.close()


class Producer(threading.Thread):
    """Pushes one task at a time until stopped; records which pushes returned success."""

    def __init__(self, chaos: Chaos) -> None:
        super().__init__(daemon=True)
        self.chaos = chaos
        self.ok: list[str] = []
        self.failed = 0
        self.slowest_failure = 0.0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.01):
            started = time.monotonic()
            try:
                self.ok += self.chaos.push([{"ms": 1}])
            except ConnectorError:  # typed, and within the socket timeouts
                self.failed += 1
                self.slowest_failure = max(self.slowest_failure, time.monotonic() - started)


def test_workers_ride_out_redis_restarts(durable_redis: RedisServer, tmp_path: Path) -> None:
    """Three restarts under pushes: every successful push runs; the same workers go on."""
    chaos = Chaos(tmp_path, ("redis", {"nodes": [durable_redis.node]}))
    chaos.configure(lease=2, per_transaction=4)
    producer = Producer(chaos)
    try:
        workers = [chaos.start_worker(), chaos.start_worker()]
        producer.start()
        # Both up before the first restart: a worker whose start-up check met a
        # restarting server exits at once, by design (one clear error at start).
        wait_until(
            lambda: {pid for _, _, pid in chaos.done()} == {w.pid for w in workers},
            timeout=60,
            message="both workers running tasks",
        )
        for restart in range(RESTARTS + 1):
            # Progress before each restart, and after the last: consumption goes on.
            target = len(chaos.done()) + 20

            def progressed(target: int = target) -> bool:
                return len(chaos.done()) >= target

            wait_until(progressed, timeout=60, message="progress")
            if restart < RESTARTS:
                durable_redis.restart()
                print(f"restart {restart + 1}: {len(chaos.done())} runs so far")
        producer.stopped.set()
        producer.join(timeout=30)
        wait_until(lambda: not chaos.check(producer.ok)[0], timeout=60, message="every ok push")
        lost, duplicated = chaos.check(producer.ok)
        pids = {pid for _, _, pid in chaos.done()}
        print(
            f"redis restarts: {len(producer.ok)} pushes ok, {producer.failed} failed (slowest "
            f"failure {producer.slowest_failure:.2f}s), lost {len(lost)}, duplicated "
            f"{sum(n - 1 for n in duplicated.values())}, "
            f"dead-lettered {chaos.connector.dead_count(QUEUE)}, worker pids {sorted(pids)}"
        )
        assert lost == []
        assert all(worker.poll() is None for worker in workers)  # never restarted
        assert pids <= {worker.pid for worker in workers}
        assert chaos.connector.dead_count(QUEUE) == 0
    finally:
        producer.stopped.set()
        chaos.close()


def test_unreachable_broker_at_start_exits_with_one_sentence(tmp_path: Path) -> None:
    """A worker whose Redis is not there exits non-zero, naming the address, within bounds."""
    port = free_port()
    chaos = Chaos(tmp_path, ("redis", {"nodes": [{"host": "127.0.0.1", "port": port}]}))
    command = [sys.executable, "-m", "sergeant.slave", *WORKER]
    result = subprocess.run(
        command,
        cwd=PROJECT_ROOT,
        env={**os.environ, **chaos.env},
        capture_output=True,
        timeout=60,
        check=False,
    )
    stderr = result.stderr.decode()
    assert result.returncode == 18  # ExitCode.BROKER_UNAVAILABLE
    assert f"127.0.0.1:{port}" in stderr
    assert "could not be reached" in stderr


def test_a_redis_outage_is_logged_as_a_state_not_per_attempt(
    durable_redis: RedisServer, tmp_path: Path
) -> None:
    """An 8 s outage: each worker logs its first failed call with the attempt count, then
    (within the minute) nothing more until one line says the broker answers again."""
    chaos = Chaos(tmp_path, ("redis", {"nodes": [durable_redis.node]}))
    chaos.configure(lease=2)
    try:
        workers = [chaos.start_worker(), chaos.start_worker()]
        chaos.push([{"ms": 20} for _ in range(2000)])  # work for the whole test
        wait_until(
            lambda: {pid for _, _, pid in chaos.done()} == {w.pid for w in workers},
            timeout=60,
            message="both workers running tasks",
        )
        durable_redis.stop()

        def logged(worker: subprocess.Popen[bytes], text: str) -> typing.Callable[[], bool]:
            return lambda: text in chaos.stderr(worker)

        for worker in workers:
            wait_until(logged(worker, "broker call"), timeout=30, message="the outage noticed")
        time.sleep(8)  # the outage itself: workers keep retrying for this long
        durable_redis.start()
        target = len(chaos.done()) + 20
        wait_until(lambda: len(chaos.done()) >= target, timeout=60, message="progress after")
        for worker in workers:
            wait_until(logged(worker, "succeeded again"), timeout=30, message="the recovery")
            lines = chaos.stderr(worker).splitlines()
            failed = [line for line in lines if "failed (attempt" in line]
            print(f"worker {worker.pid}: {len(failed)} retry lines: {failed}")
            assert 1 <= len(failed) <= 2
            assert "attempt 1" in failed[0]
            assert all(w.poll() is None for w in workers)
    finally:
        chaos.close()


def test_an_unreachable_broker_is_said_once_per_respawn(tmp_path: Path) -> None:
    """Under the supervisor, the worker's start-up error is printed once (by the
    supervisor's 'ended' line), not also by the worker."""
    port = free_port()
    chaos = Chaos(tmp_path, ("redis", {"nodes": [{"host": "127.0.0.1", "port": port}]}))
    supervisor = chaos.start_supervisor(1)
    try:
        wait_until(
            lambda: chaos.stderr(supervisor).count("ended: BROKER_UNAVAILABLE") >= 3,
            timeout=60,
            message="three respawns",
        )
    finally:
        chaos.close()
    lines = chaos.stderr(supervisor).splitlines()
    ended = [line for line in lines if "ended: BROKER_UNAVAILABLE" in line]
    # The supervisor's lease keeper says once that the broker fails it (its own state
    # change, whichever of its steps met the failure first); the worker says nothing.
    keeper = "fall back to expiring"
    said = [line for line in lines if "could not be reached" in line and keeper not in line]
    assert said == ended
