"""The worker's heartbeat thread: presence, and at-least-once lease renewal and reclaim."""

from __future__ import annotations

import logging
import threading
import time
import typing

from sergeant.config import WorkerConfig
from sergeant.consume import prefetch
from sergeant.consume import presence as _presence

__all__ = ["Beating", "Heartbeat", "heartbeat_interval"]

logger = logging.getLogger("sergeant.consumer")


class Beating(typing.Protocol):
    """What the heartbeat drives: the consumer (a protocol, so the consumer imports
    this module and not the other way round)."""

    config: WorkerConfig
    at_least_once: bool

    def unblock_if_stalled(self) -> None: ...
    def renew_leases(self) -> None: ...
    def reclaim_expired(self) -> None: ...
    def publish_presence(self) -> None: ...
    def check_cancels(self) -> None: ...


def heartbeat_interval(config: WorkerConfig) -> float:
    """Seconds between heartbeats: a third of a lease, at most ``HEARTBEAT_SECONDS``."""
    return min(config.lease_seconds / 3, _presence.HEARTBEAT_SECONDS)


class Heartbeat(threading.Thread):
    """Publishes the worker's heartbeat and, at-least-once, renews its leases and
    reclaims expired ones, every :func:`heartbeat_interval`; unblocks a loop stuck in
    long tasks (prefetched tasks go back, settled ones are acknowledged)."""

    def __init__(self, consumer: Beating) -> None:
        super().__init__(name="sergeant-heartbeat", daemon=True)
        self.consumer = consumer
        self.stopped = threading.Event()

    def run(self) -> None:
        consumer = self.consumer
        interval = heartbeat_interval(consumer.config)
        # At-least-once it also looks, several times per PATIENCE_SECONDS, for a loop
        # stuck in long tasks (Consumer.unblock_if_stalled).
        leases = consumer.at_least_once
        tick = min(interval, prefetch.PATIENCE_SECONDS / 4) if leases else interval
        next_beat = time.monotonic() + interval
        while not self.stopped.wait(tick):
            try:
                if leases:
                    consumer.unblock_if_stalled()
                if time.monotonic() < next_beat:
                    continue
                next_beat = time.monotonic() + interval
                if leases:
                    consumer.renew_leases()
                    consumer.reclaim_expired()
                consumer.publish_presence()
                consumer.check_cancels()
            except Exception as exc:  # a broker hiccup must not kill the heartbeat
                logger.warning(
                    "lease heartbeat failed: %r", exc, extra={"event": "heartbeat_failed"}
                )
