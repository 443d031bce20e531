"""Pulls sent ahead of the running batch (``WorkerConfig.prefetch``)."""

from __future__ import annotations

import threading
import typing

from sergeant.broker import LeasedBatch
from sergeant.config import WorkerConfig
from sergeant.connector import Connector, Delivery

__all__ = ["PendingPull", "pulls_ahead"]


def pulls_ahead(connector: Connector, config: WorkerConfig) -> int:
    """``config.prefetch``, with None resolved (see ``WorkerConfig``)."""
    if config.prefetch is None:
        batched = config.tasks_per_transaction > 1
        return 1 if batched and connector.overlaps_pulls else 0
    return int(config.prefetch)


class PendingPull:
    """A pull sent ahead (``WorkerConfig.prefetch``), with the acknowledgements it carries
    (at most one pull in flight carries any: see ``Consumer._start_prefetch``).

    The loop reads it when it needs the next batch; the heartbeat reads it first when
    a task runs long, so the prefetched leases are renewed like the others.
    """

    def __init__(
        self,
        sent: list[Delivery],
        count: int,
        finish: typing.Callable[[], tuple[int, LeasedBatch]],
    ) -> None:
        self.sent = sent
        self.count = count
        self._finish: typing.Callable[[], tuple[int, LeasedBatch]] | None = finish
        self._lock = threading.Lock()
        self.accepted = 0
        self.batch: LeasedBatch | None = None
        self.error: Exception | None = None

    def resolve(self) -> None:
        """Read the reply (once, from whichever thread comes first)."""
        with self._lock:
            finish, self._finish = self._finish, None
            if finish is None:
                return
            try:
                self.accepted, self.batch = finish()
            except Exception as exc:  # reported by the loop, which retries the usual way
                self.error = exc

    def held(self) -> list[Delivery]:
        """The leases it brought, once read."""
        batch = self.batch
        return batch.deliveries if batch is not None else []
