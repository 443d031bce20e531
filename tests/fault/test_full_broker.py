"""A full broker drains: it refuses new tasks and its running workers empty it.

Redis with ``maxmemory`` and ``noeviction``, and SQLite on a small tmpfs, are
filled by pushes until they refuse them; then real worker processes start on the
full broker, while a producer goes on pushing. The check is the workers' own
ledger: every push that returned ran, and the workers never had to restart.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
import redis

from sergeant.errors import BrokerFull, ConnectorError
from tests.fault.harness import QUEUE, Chaos
from tests.filesystems import SmallFilesystem
from tests.servers import RedisServer, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

#: Tasks per push, and the random bytes each carries (as hex, so nothing compresses it).
BATCH, PAD_BYTES = 10, 1000
#: Most pushes tried while filling: a broker that never fills fails the test.
MAX_PUSHES = 50_000
#: Generous bound, in seconds, on the drain of everything stored.
DRAIN_SECONDS = 150.0


def tasks() -> list[dict[str, object]]:
    return [{"ms": 0, "pad": os.urandom(PAD_BYTES).hex()} for _ in range(BATCH)]


class Producer(threading.Thread):
    """Pushes a batch every 20 ms until stopped; keeps the ids of the pushes that returned."""

    def __init__(self, chaos: Chaos, ok: list[str]) -> None:
        super().__init__(daemon=True)
        self.chaos = chaos
        self.ok = ok
        self.refused = 0
        self.other_errors: list[str] = []
        self.stopped = threading.Event()

    def push(self) -> bool:
        """One batch; False if the broker refused it for lack of room."""
        try:
            self.ok += self.chaos.push(tasks())
        except BrokerFull:
            self.refused += 1
            return False
        except ConnectorError as exc:  # anything else is a bug here: reported, not hidden
            self.other_errors.append(repr(exc))
        return True

    def fill(self) -> None:
        """Push until the broker refuses a push."""
        for _ in range(MAX_PUSHES):
            if not self.push():
                return
        raise AssertionError(f"the broker took {len(self.ok)} tasks and never refused a push")

    def run(self) -> None:
        while not self.stopped.wait(0.02):
            self.push()


def drains(chaos: Chaos) -> None:
    """Fill the broker, start two workers on it while pushes go on, and check that every
    push that returned ran, and nothing else went wrong."""
    chaos.configure(lease=5, per_transaction=10)
    ok: list[str] = []
    producer = Producer(chaos, ok)
    producer.fill()
    stored, refused_filling = len(ok), producer.refused
    assert stored > 0
    workers = [chaos.start_worker(), chaos.start_worker()]
    producer.start()
    try:
        first = ok[:stored]
        wait_until(lambda: not chaos.check(first)[0], DRAIN_SECONDS, 0.2, "the stored tasks")
        producer.stopped.set()
        producer.join(timeout=30)
        wait_until(lambda: not chaos.check(ok)[0], DRAIN_SECONDS, 0.2, "every push that returned")
        wait_until(chaos.broker_is_empty, 30, 0.2, "an empty broker")
        lost, duplicated = chaos.check(ok)
        print(
            f"full {chaos.connector_config[0]}: {stored} tasks stored before the first "
            f"refusal; {len(ok)} pushed in all, {producer.refused} pushes refused "
            f"({refused_filling} while filling), lost {len(lost)}, duplicated "
            f"{sum(n - 1 for n in duplicated.values())}"
        )
        assert lost == []
        assert producer.other_errors == []
        assert all(worker.poll() is None for worker in workers)  # never restarted
        assert {pid for _, _, pid in chaos.done()} <= {worker.pid for worker in workers}
        assert chaos.connector.dead_count(QUEUE) == 0
        for worker in workers:
            assert "Traceback" not in chaos.stderr(worker)
    finally:
        producer.stopped.set()


def test_full_redis_drains(full_redis: RedisServer, tmp_path: Path) -> None:
    """Redis at maxmemory: pushes are refused with BrokerFull, the workers started on
    it run everything stored, and the limit is never raised."""
    client = redis.Redis(host="127.0.0.1", port=full_redis.port, socket_timeout=5)
    limit = client.config_get("maxmemory")["maxmemory"]
    chaos = Chaos(tmp_path, ("redis", {"nodes": [full_redis.node]}))
    try:
        drains(chaos)
        assert client.config_get("maxmemory")["maxmemory"] == limit
    finally:
        chaos.close()
        client.close()


def test_full_disk_drains(small_filesystem: SmallFilesystem, tmp_path: Path) -> None:
    """SQLite on a full file system: pushes are refused with BrokerFull, the workers
    started on it run everything stored (the ledger lives on another disk)."""
    file_path = small_filesystem.path("broker.sqlite3")
    chaos = Chaos(tmp_path, ("local", {"file_path": file_path}))
    try:
        drains(chaos)
    finally:
        chaos.close()
