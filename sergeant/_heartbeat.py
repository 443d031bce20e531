"""The worker's heartbeat thread: presence, and at-least-once lease renewal and reclaim."""

from __future__ import annotations

import logging
import threading
import typing

from sergeant import _presence
from sergeant.config import WorkerConfig

if typing.TYPE_CHECKING:
    from sergeant.consumer import Consumer

__all__ = ["Heartbeat", "heartbeat_interval"]

logger = logging.getLogger("sergeant.consumer")


def heartbeat_interval(config: WorkerConfig) -> float:
    """Seconds between heartbeats: a third of a lease, at most ``HEARTBEAT_SECONDS``."""
    return min(config.lease_seconds / 3, _presence.HEARTBEAT_SECONDS)


class Heartbeat(threading.Thread):
    """Publishes the worker's heartbeat and, at-least-once, renews its leases and
    reclaims expired ones, every :func:`heartbeat_interval`."""

    def __init__(self, consumer: Consumer) -> None:
        super().__init__(name="sergeant-heartbeat", daemon=True)
        self.consumer = consumer
        self.stopped = threading.Event()

    def run(self) -> None:
        interval = heartbeat_interval(self.consumer.config)
        while not self.stopped.wait(interval):
            try:
                if self.consumer.at_least_once:
                    self.consumer.renew_leases()
                    self.consumer.reclaim_expired()
                self.consumer.publish_presence()
            except Exception as exc:  # a broker hiccup must not kill the heartbeat
                logger.warning(
                    "lease heartbeat failed: %r", exc, extra={"event": "heartbeat_failed"}
                )
