"""Stalls are not deaths: a Redis that stops answering for longer than the socket
timeout (but less than a lease) costs time, never a redelivery, a charge or a false
warning. Two ``DEBUG SLEEP`` stalls hit two workers under load; the ledger counts."""

from __future__ import annotations

import collections
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.fault.harness import Chaos
from tests.servers import RedisServer, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

#: Longer than the connector's 5 s socket timeout, far shorter than the 60 s lease.
STALL_SECONDS = 7
TASKS = 600


@pytest.fixture
def debug_redis() -> Iterator[RedisServer]:
    """A private redis-server that accepts DEBUG SLEEP."""
    server = RedisServer(
        extra_args=["--save", "", "--appendonly", "no", "--enable-debug-command", "yes"]
    )
    server.start()
    yield server
    server.close()


def _stall(server: RedisServer) -> None:
    client = redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=STALL_SECONDS + 10)
    try:
        client.execute_command("DEBUG", "SLEEP", STALL_SECONDS)  # type: ignore[no-untyped-call]
    finally:
        client.close()


def test_stalls_shorter_than_the_lease_redeliver_nothing(
    debug_redis: RedisServer, tmp_path: Path
) -> None:
    chaos = Chaos(tmp_path, ("redis", {"nodes": [debug_redis.node]}))
    try:
        chaos.configure(lease=60, prefetch="none", per_transaction=5)
        pushed = chaos.push([{"ms": 20} for _ in range(TASKS)])
        workers = [chaos.start_worker(), chaos.start_worker()]
        for stall in (1, 2):
            target = len(chaos.done()) + 40

            def progressed(target: int = target) -> bool:
                return len(chaos.done()) >= target

            wait_until(progressed, timeout=60, message=f"progress before stall {stall}")
            stalling = threading.Thread(target=_stall, args=(debug_redis,))
            stalling.start()
            stalling.join()
        wait_until(lambda: not chaos.check(pushed)[0], timeout=120, message="every task")
        lost, duplicated = chaos.check(pushed)
        attempts = collections.Counter(attempt for _, attempt, _ in chaos.starts())
        logs = "".join(chaos.stderr(worker) for worker in workers)
        print(f"lost {len(lost)}, duplicated {len(duplicated)}, attempts {dict(attempts)}")
        timeouts = logs.count("Timeout reading from socket")
        print(f"calls cut off by the socket timeout: {timeouts}")
        assert timeouts >= 2  # the stalls really cut calls off
        assert lost == []
        assert duplicated == {}
        assert set(attempts) == {1}  # no delivery charged, none redelivered
        assert "acknowledgements were rejected" not in logs
        assert "reclaimed" not in logs
        assert all(worker.poll() is None for worker in workers)
    finally:
        chaos.close()
