"""Pulls sent ahead of the running batch (``WorkerConfig.prefetch``)."""

from __future__ import annotations

import threading
import typing

from sergeant.broker import Broker, Delivery, LeasedBatch
from sergeant.config import WorkerConfig

__all__ = ["ONE_BY_ONE_PULLS_AHEAD", "PATIENCE_SECONDS", "PendingPull", "pulls_ahead"]

#: Pulls kept in flight by default when each brings one task: enough to hide the
#: round trip and the broker's work behind the tasks before them.
ONE_BY_ONE_PULLS_AHEAD = 3
#: Seconds the loop may go without finishing a task, while it holds prefetched pulls,
#: before it gives their tasks back to the queue (at-least-once): a long task must not
#: keep them from idle workers.
PATIENCE_SECONDS = 1.0


def pulls_ahead(broker: Broker, config: WorkerConfig) -> int:
    """``config.prefetch``, with None resolved (see ``WorkerConfig``); 0 with a
    ``rate_limit``."""
    if config.rate_limit is not None:
        return 0  # see consume.throttle: tasks pulled ahead would bunch their starts
    if config.prefetch is not None:
        return int(config.prefetch)
    if not broker.overlaps_pulls:
        return 0  # a pull "sent ahead" would simply run at once
    if config.tasks_per_transaction > 1:
        return 1
    # One-task pulls: only where prefetched tasks can be given back (see PATIENCE_SECONDS).
    return ONE_BY_ONE_PULLS_AHEAD if config.delivery == "at_least_once" else 0


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
