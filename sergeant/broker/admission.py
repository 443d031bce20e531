"""How leased and popped payloads become tasks: decoded, and the ones that must not
run sent to the dead letters with why (a bad signature, an undecodable payload, a task
over its delivery bound), each logged as a rate rather than a line per task.

A mixin of ``sergeant.broker.Broker``: the usual case (every payload decodes, none is
over the bound) is one list comprehension; the rest is the slow path.
"""

from __future__ import annotations

import logging
import operator
import typing

from sergeant.broker import kill_note
from sergeant.broker.rejects import RejectLog
from sergeant.connector import Connector, Delivery
from sergeant.encoder import Encoder
from sergeant.encoder.signing import BadSignature
from sergeant.errors import DecodeError
from sergeant.objects import Task

# A Delivery's fields by position (it is a NamedTuple): read in C for a whole batch.
_PAYLOAD = operator.itemgetter(Delivery._fields.index("payload"))
_DELIVERIES = operator.itemgetter(Delivery._fields.index("deliveries"))

__all__ = [
    "BAD_SIGNATURE",
    "KILLED_AFTER_TIMEOUT",
    "UNDECODABLE",
    "WORKER_DIED",
    "Admission",
    "LeasedBatch",
    "LeasedTask",
]

logger = logging.getLogger("sergeant.broker")

#: Dead-letter reason of a task over its delivery bound whose worker was killed by
#: the watchdog at its hard deadline.
KILLED_AFTER_TIMEOUT = "killed after timeout"
#: Dead-letter reason of a task over its delivery bound, otherwise.
WORKER_DIED = "worker died"
#: What ``Broker.on_dead_letter`` is told for an undecodable payload (whose stored
#: reason is the decoder's error text, too varied for a metric label).
UNDECODABLE = "undecodable"
#: Dead-letter reason of a task refused by a worker with signing keys: unsigned, or
#: not signed by one of its keys (never decoded).
BAD_SIGNATURE = "bad signature"


class LeasedTask(typing.NamedTuple):
    """A decoded task and the lease that must settle it."""

    task: Task
    delivery: Delivery


class LeasedBatch(typing.NamedTuple):
    """Leased tasks and, in the same order, the leases that must settle them
    (two lists: no object per task)."""

    tasks: list[Task]
    deliveries: list[Delivery]


class Admission:
    """Decoding what a connector handed out, and the fate of what cannot run."""

    connector: Connector
    encoder: Encoder
    _rejects: RejectLog

    if typing.TYPE_CHECKING:

        def _dead_lettered(self, queue: str, reason: str, moved: int) -> None: ...

        def fill_previous(self, queue: str, tasks: typing.Iterable[Task]) -> None: ...

    def _decode_popped(self, queue: str, payloads: list[bytes]) -> list[Task]:
        """Popped payloads decoded (workflow steps given their ``previous``); an
        undecodable one is logged and dropped."""
        steps = self.encoder.steps_decoded
        tasks = self._decode_popped_plain(queue, payloads)
        if self.encoder.steps_decoded != steps:
            self.fill_previous(queue, tasks)
        return tasks

    def _decode_popped_plain(self, queue: str, payloads: list[bytes]) -> list[Task]:
        try:  # the usual case: every payload decodes
            return self.encoder.decode_many(payloads)
        except DecodeError:
            pass
        decode, tasks = self.encoder.decode, []
        for payload in payloads:
            try:
                tasks.append(decode(payload))
            except DecodeError as exc:
                self._rejects.report(
                    queue, "task_undecodable", "dropped an undecodable task from queue %r: %s",
                    queue, exc,
                )  # fmt: skip
        return tasks

    def _admit(self, queue: str, deliveries: list[Delivery], max_deliveries: int) -> LeasedBatch:
        """Decode leased deliveries; dead-letter those that must not run (see lease_tasks);
        give workflow steps their ``previous``."""
        steps = self.encoder.steps_decoded
        batch = self._admit_decoded(queue, deliveries, max_deliveries)
        if self.encoder.steps_decoded != steps:  # only batches holding steps pay for this
            self.fill_previous(queue, batch.tasks)
        return batch

    def _admit_decoded(
        self, queue: str, deliveries: list[Delivery], max_deliveries: int
    ) -> LeasedBatch:
        counts = list(map(_DELIVERIES, deliveries))  # in C, as the payloads
        if max_deliveries and counts and max(counts) > max_deliveries:
            return self._admit_one_by_one(queue, deliveries, max_deliveries)
        try:  # the usual case: every payload decodes
            tasks = self.encoder.decode_many(list(map(_PAYLOAD, deliveries)), counts)
        except DecodeError:
            return self._admit_one_by_one(queue, deliveries, max_deliveries)
        return LeasedBatch(tasks, deliveries)

    def _admit_one_by_one(
        self, queue: str, deliveries: list[Delivery], max_deliveries: int
    ) -> LeasedBatch:
        batch = LeasedBatch([], [])
        decode = self.encoder.decode
        for delivery in deliveries:
            try:
                task = decode(delivery.payload)
            except BadSignature as exc:
                moved = self.connector.dead_letter_many(
                    queue, [delivery], BAD_SIGNATURE, exc.reason
                )
                self._dead_lettered(queue, BAD_SIGNATURE, moved)
                self._rejects.report(
                    queue, "task_bad_signature",
                    "dead-lettered a task with a bad signature from queue %r, not decoded: %s",
                    queue, exc.reason,
                )  # fmt: skip
                continue
            except DecodeError as exc:
                moved = self.connector.dead_letter_many(queue, [delivery], str(exc), exc.reason)
                self._dead_lettered(queue, UNDECODABLE, moved)
                self._rejects.report(
                    queue, "task_undecodable",
                    "dead-lettered an undecodable task from queue %r: %s", queue, exc,
                )  # fmt: skip
                continue
            if 0 < max_deliveries < delivery.deliveries:
                self._bury_over_budget(queue, task, delivery, max_deliveries)
                continue
            task.deliveries = delivery.deliveries
            batch.tasks.append(task)
            batch.deliveries.append(delivery)
        return batch

    def _bury_over_budget(
        self, queue: str, task: Task, delivery: Delivery, max_deliveries: int
    ) -> None:
        """Dead-letter a task whose earlier ``max_deliveries`` deliveries all died."""
        note_key = kill_note.key(queue, task.id)
        note = self.connector.key_get(note_key)
        if note is not None:
            reason, error = KILLED_AFTER_TIMEOUT, note.decode("utf-8", "replace")
        else:
            reason = WORKER_DIED
            error = f"its lease expired {max_deliveries} times: its worker died or was cut off"
        moved = self.connector.dead_letter_many(queue, [delivery], reason, error)
        self._dead_lettered(queue, reason, moved)
        if moved and note:
            self.connector.key_delete(note_key)
        # The count the dead letter records: the times it was handed out, this one included.
        logger.error(
            "dead-lettered task %s of queue %r after %d deliveries: %s",
            task.id,
            queue,
            delivery.deliveries,
            reason,
            extra={"event": "task_over_delivery_bound", "queue": queue, "reason": reason},
        )
