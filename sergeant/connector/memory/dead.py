"""The memory connector's dead letters: bury, read, requeue and purge them."""

from __future__ import annotations

import time
from collections.abc import Sequence

from sergeant.connector.base import DeadLetter, Delivery
from sergeant.connector.memory import steps
from sergeant.connector.memory.access import StoreAccess
from sergeant.connector.memory.store import Dead, Store

__all__ = ["DeadLetters"]


class DeadLetters(StoreAccess):
    """The dead-letter part of the memory connector's contract."""

    def dead_letter_many(
        self, queue: str, deliveries: Sequence[Delivery], reason: str, error: str = ""
    ) -> int:
        """See :meth:`sergeant.connector.Connector.dead_letter_many`."""

        def bury(data: Store) -> int:
            target = data.queue(queue)
            held = steps.settle(target, deliveries)
            now = time.time()
            target.dead.extend(Dead(lease.item, reason, error, now) for lease in held)
            target.free(lease.item for lease in held)
            return len(held)

        return self._locked(bury)

    def dead_letters(self, queue: str, limit: int = 100) -> list[DeadLetter]:
        """See :meth:`sergeant.connector.Connector.dead_letters`."""

        def read(data: Store) -> list[DeadLetter]:
            dead = list(data.queue(queue).dead)[: max(limit, 0)]
            return [steps.dead_letter(entry) for entry in dead]

        return self._locked(read)

    def requeue_dead(self, queue: str, limit: int = 0) -> int:
        """See :meth:`sergeant.connector.Connector.requeue_dead`."""

        def requeue(data: Store) -> int:
            target = data.queue(queue)
            moved = 0
            while target.dead and (limit <= 0 or moved < limit):
                item = target.dead.popleft().item
                item.deliveries, item.high = 0, False
                target.normal.append(item)
                moved += 1
            if moved:
                data.cond.notify_all()
            return moved

        return self._locked(requeue)

    def purge_dead(self, queue: str) -> int:
        """See :meth:`sergeant.connector.Connector.purge_dead`."""

        def purge(data: Store) -> int:
            dead = data.queue(queue).dead
            purged = len(dead)
            dead.clear()
            return purged

        return self._locked(purge)

    def dead_count(self, queue: str) -> int:
        """See :meth:`sergeant.connector.Connector.dead_count`."""
        return self._locked(lambda data: len(data.queue(queue).dead))
