"""``Broker``: tasks over a connector (bytes) through an encoder.

This layer turns tasks into payloads and back, and gives undecodable payloads a
clear fate (the dead letters, with the decoder's error) instead of crashing a worker.

It also enforces the delivery bound: a task handed out more than
``max_deliveries`` times (each earlier delivery ended with its lease expiring,
because its worker died, was killed or was cut off) is dead-lettered when it is
leased again, instead of run. The reason is ``'killed after timeout'`` when the
watchdog left a kill note for it (see ``sergeant.broker.kill_note``), else ``'worker died'``.
"""

from __future__ import annotations

import logging
import typing

from sergeant.broker import kill_note
from sergeant.broker.admin import QueueAdministration
from sergeant.broker.admission import (
    BAD_SIGNATURE,
    KILLED_AFTER_TIMEOUT,
    UNDECODABLE,
    WORKER_DIED,
    Admission,
    LeasedBatch,
    LeasedTask,
)
from sergeant.broker.cancel import Cancelling
from sergeant.broker.fleet import Fleet, QueueCounts
from sergeant.broker.flows import Flows
from sergeant.broker.groups import GroupCount, Grouping
from sergeant.broker.produce import Producing
from sergeant.broker.progress import ProgressKeeping
from sergeant.broker.rejects import RejectLog
from sergeant.broker.results import ResultStore
from sergeant.config import Connector as ConnectorConfig
from sergeant.config import Encoder as EncoderConfig
from sergeant.connector import (
    Connector,
    DeadLetter,
    Delivery,
    Lock,
    Priority,
    ReclaimResult,
    create,
)
from sergeant.encoder import Encoder
from sergeant.encoder.kwargs import checked_kwargs
from sergeant.encoder.peek import Peek, jsonable
from sergeant.objects import Task

__all__ = [
    "BAD_SIGNATURE",
    "KILLED_AFTER_TIMEOUT",
    "KILL_NOTE_TTL_SECONDS",
    "UNDECODABLE",
    "WORKER_DIED",
    "Broker",
    "DeadLetter",
    "Delivery",
    "GroupCount",
    "LeasedBatch",
    "LeasedTask",
    "Lock",
    "Peek",
    "Priority",
    "QueueCounts",
    "ReclaimResult",
    "checked_kwargs",
    "jsonable",
    "kill_note_key",
]

logger = logging.getLogger(__name__)

#: Seconds a kill note is kept (see ``sergeant.broker.kill_note``).
KILL_NOTE_TTL_SECONDS = kill_note.TTL_SECONDS
#: The key of the kill note of a task (see ``sergeant.broker.kill_note``).
kill_note_key = kill_note.key


class Broker(
    Producing,
    Admission,
    QueueAdministration,
    Fleet,
    ProgressKeeping,
    Flows,
    Cancelling,
    Grouping,
):
    """Task-level operations on one connector with one encoder (pushes come from
    ``Producing``; decoding what is handed out from ``Admission``; the counts, purges,
    dead letters and locks from ``QueueAdministration``; presence and owner-wide lease
    keeping from ``Fleet``; task progress from ``ProgressKeeping``; workflows from
    ``Flows``). Nothing above this
    layer touches a connector or an encoder: the records they share (``Delivery``,
    ``DeadLetter``...) are re-exported here.
    """

    def __init__(self, connector: Connector, encoder: Encoder) -> None:
        self.connector = connector
        self.encoder = encoder
        #: Called with ``(queue, reason)`` for each task this broker dead-letters
        #: (the worker sets it to count them in its metrics).
        self.on_dead_letter: typing.Callable[[str, str], None] | None = None
        self._rejects = RejectLog(logger)

    @classmethod
    def from_config(
        cls, connector: ConnectorConfig, encoder: EncoderConfig | None = None
    ) -> Broker:
        """The broker that ``WorkerConfig.connector`` and ``.encoder`` describe
        (connections open at the first call)."""
        coding = encoder if encoder is not None else EncoderConfig()
        return cls(
            create(connector.type, connector.params),
            Encoder(coding.serializer, coding.compressor, coding.signing_keys()),
        )

    def result_store(self, ttl_seconds: float) -> ResultStore:
        """Where this broker's workers store and fetch task results."""
        return ResultStore(self.connector, self.encoder, ttl_seconds)

    def _dead_lettered(self, queue: str, reason: str, moved: int) -> None:
        if moved and self.on_dead_letter is not None:
            self.on_dead_letter(queue, reason)

    # -- consuming ----------------------------------------------------------------

    def pop_tasks(self, queue: str, count: int) -> list[Task]:
        """Pop up to ``count`` tasks for good (at-most-once).

        A payload that cannot be decoded is logged with its decoder error and
        dropped: popped bytes have no lease to dead-letter them with.
        """
        return self._decode_popped(queue, self.connector.pop_many(queue, count))

    def start_pop_tasks(self, queue: str, count: int) -> typing.Callable[[], list[Task]]:
        """Begin :meth:`pop_tasks` (not blocking); the function returned finishes it
        (``Connector.start_pop``)."""
        finish = self.connector.start_pop(queue, count)
        return lambda: self._decode_popped(queue, finish())

    def lease_tasks(
        self,
        queue: str,
        count: int,
        owner: str,
        lease_seconds: float,
        block_seconds: float = 0.0,
        max_deliveries: int = 0,
    ) -> list[LeasedTask]:
        """Lease up to ``count`` tasks, dead-lettering those that must not run.

        Undecodable payloads go to the dead letters with the decoder's error; tasks
        handed out more than ``max_deliveries`` times (0 = no bound) with
        ``'killed after timeout'`` or ``'worker died'``.
        """
        deliveries = self.connector.lease_many(queue, count, owner, lease_seconds, block_seconds)
        tasks, kept = self._admit(queue, deliveries, max_deliveries)
        return [LeasedTask(task, delivery) for task, delivery in zip(tasks, kept, strict=True)]

    def ack_and_lease_tasks(
        self,
        queue: str,
        acks: typing.Sequence[Delivery],
        count: int,
        owner: str,
        lease_seconds: float,
        block_seconds: float = 0.0,
        max_deliveries: int = 0,
    ) -> tuple[int, LeasedBatch]:
        """Acknowledge ``acks``, then lease as :meth:`lease_tasks`, in one round trip
        where the connector can (``Connector.ack_and_lease``).

        Returns:
            How many of ``acks`` were still held, and the leased tasks.
        """
        acked, deliveries = self.connector.ack_and_lease(
            queue, acks, count, owner, lease_seconds, block_seconds
        )
        return acked, self._admit(queue, deliveries, max_deliveries)

    def start_ack_and_lease_tasks(
        self,
        queue: str,
        acks: typing.Sequence[Delivery],
        count: int,
        owner: str,
        lease_seconds: float,
        max_deliveries: int = 0,
    ) -> typing.Callable[[], tuple[int, LeasedBatch]]:
        """Begin :meth:`ack_and_lease_tasks` (not blocking); the function returned
        finishes it (``Connector.start_ack_and_lease``)."""
        finish = self.connector.start_ack_and_lease(queue, acks, count, owner, lease_seconds)

        def admit() -> tuple[int, LeasedBatch]:
            acked, deliveries = finish()
            return acked, self._admit(queue, deliveries, max_deliveries)

        return admit

    def wait_for_tasks(self, queue: str, block_seconds: float) -> bool:
        """Wait up to ``block_seconds`` for a ready task, taking none; see the contract."""
        return self.connector.wait_for_items(queue, block_seconds)

    def ack(self, queue: str, deliveries: typing.Sequence[Delivery]) -> int:
        """Settle leases for good; returns how many were still held."""
        return self.connector.ack_many(queue, deliveries) if deliveries else 0

    def release(self, queue: str, deliveries: typing.Sequence[Delivery]) -> int:
        """Give unstarted leased tasks back to the head of the queue."""
        return self.connector.release_many(queue, deliveries) if deliveries else 0

    def extend(
        self, queue: str, deliveries: typing.Sequence[Delivery], lease_seconds: float
    ) -> int:
        """Renew leases; returns how many are still held."""
        return self.connector.extend_leases(queue, deliveries, lease_seconds) if deliveries else 0

    def reclaim(self, queue: str, max_deliveries: int) -> ReclaimResult:
        """Put tasks of dead workers back (or in the dead letters past the bound)."""
        return self.connector.reclaim_expired(queue, max_deliveries)

    def charge(
        self,
        queue: str,
        deliveries: typing.Sequence[Delivery],
        max_deliveries: int,
        reason: str,
        error: str = "",
        report: bool = True,
    ) -> ReclaimResult:
        """Give back tasks whose run ended their worker, their delivery counted; past
        ``max_deliveries`` they are dead-lettered with ``reason`` (``Connector.charge_many``).
        ``report=False`` leaves the log line to the caller (the supervisor writes its own)."""
        if not deliveries:
            return ReclaimResult()
        result = self.connector.charge_many(queue, deliveries, max_deliveries, reason, error)
        self._dead_lettered(queue, reason, result.dead_lettered)
        if result.dead_lettered and report:
            logger.error(
                "dead-lettered %d task(s) of queue %r after %d deliveries: %s",
                result.dead_lettered,
                queue,
                max(delivery.deliveries for delivery in deliveries),
                reason,
                extra={"event": "task_over_delivery_bound", "queue": queue, "reason": reason},
            )
        return result

    def dead_letter(self, queue: str, delivery: Delivery, reason: str, error: str = "") -> int:
        """Move one leased task to the dead letters."""
        moved = self.connector.dead_letter_many(queue, [delivery], reason, error)
        self._dead_lettered(queue, reason, moved)
        return moved
