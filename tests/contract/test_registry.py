"""The connector contract for operator views: live workers and per-priority lengths.

Runs against every broker set-up (see ``CONNECTOR_KINDS``).
"""

from __future__ import annotations

import time
import uuid

from sergeant.connector import Connector
from tests.servers import wait_until


def worker_id() -> str:
    return f"w-{uuid.uuid4().hex[:10]}"


def test_registered_workers_are_listed_until_unregistered(connector: Connector) -> None:
    """register_worker publishes info, again replaces it, unregister_worker removes it."""
    first, second = worker_id(), worker_id()
    connector.register_worker(first, b'{"n": 1}', 30)
    connector.register_worker(second, b"second", 30)
    connector.register_worker(first, b'{"n": 2}', 30)
    live = connector.workers()
    assert b'{"n": 2}' in live
    assert b"second" in live
    assert b'{"n": 1}' not in live
    assert connector.unregister_worker(first) is True
    assert connector.unregister_worker(first) is False
    assert b'{"n": 2}' not in connector.workers()
    assert b"second" in connector.workers()


def test_a_worker_whose_heartbeat_expired_is_not_listed(connector: Connector) -> None:
    """A worker that stops renewing vanishes after its TTL, with no sweep needed."""
    gone, staying = worker_id(), worker_id()
    connector.register_worker(gone, b"gone", 0.2)
    connector.register_worker(staying, b"staying", 30)
    assert b"gone" in connector.workers()
    wait_until(lambda: b"gone" not in connector.workers(), timeout=10)
    assert b"staying" in connector.workers()
    assert connector.unregister_worker(gone) is False


def test_length_by_priority_splits_ready_items(connector: Connector, queue: str) -> None:
    """HIGH and NORMAL ready items are counted apart; due delayed count, future ones not."""
    connector.push_many(queue, [b"n1", b"n2", b"n3"])
    connector.push_many(queue, [b"h1"], priority="HIGH")
    connector.push_many(queue, [b"soon"], priority="HIGH", consumable_from=time.time() + 0.2)
    connector.push_many(queue, [b"later"], consumable_from=time.time() + 3600)
    assert connector.length_by_priority(queue) == {"HIGH": 1, "NORMAL": 3}
    wait_until(lambda: connector.length_by_priority(queue)["HIGH"] == 2, timeout=10)
    assert sum(connector.length_by_priority(queue).values()) == connector.length(queue)
    connector.lease_many(queue, 3, "w", 30)
    if connector.ordered:  # spread over independent nodes, HIGH goes first per node only
        assert connector.length_by_priority(queue) == {"HIGH": 0, "NORMAL": 2}
    assert sum(connector.length_by_priority(queue).values()) == 2
    assert connector.length_by_priority(queue + "-empty") == {"HIGH": 0, "NORMAL": 0}
