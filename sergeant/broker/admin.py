"""What an operator does to a queue through the ``Broker``: counts, purges,
dead letters (read, peeked, requeued, purged), named locks and closing.

A mixin of ``sergeant.broker.Broker``; none of it is on a task's path.
"""

from __future__ import annotations

from sergeant.connector import Connector, DeadLetter, Lock
from sergeant.encoder import Encoder
from sergeant.encoder.peek import Peek, peek
from sergeant.errors import DecodeError
from sergeant.objects import Task

__all__ = ["QueueAdministration"]


class QueueAdministration:
    """Queue and dead-letter maintenance over ``connector`` and ``encoder``."""

    connector: Connector
    encoder: Encoder

    def number_of_enqueued_tasks(self, queue: str, include_delayed: bool = False) -> int:
        """Ready tasks (plus delayed ones when asked)."""
        return self.connector.length(queue, include_delayed)

    def purge_tasks(self, queue: str) -> int:
        """Delete ready and delayed tasks; returns how many."""
        return self.connector.purge(queue)

    def dead_tasks(self, queue: str, limit: int = 100) -> list[tuple[Task | None, DeadLetter]]:
        """Dead letters, oldest first, each with its task when it can be decoded."""
        result: list[tuple[Task | None, DeadLetter]] = []
        for dead in self.connector.dead_letters(queue, limit):
            try:
                task: Task | None = self.encoder.decode(dead.payload)
            except DecodeError:
                task = None
            result.append((task, dead))
        return result

    def peek_dead_tasks(self, queue: str, limit: int = 100) -> list[tuple[Peek, DeadLetter]]:
        """Dead letters, oldest first, each read for an operator without running code
        (a pickle through ``SafeUnpickler``; see ``sergeant.encoder.peek``)."""
        return [
            (peek(d.payload, self.encoder), d) for d in self.connector.dead_letters(queue, limit)
        ]

    def requeue_dead_tasks(self, queue: str, limit: int = 0) -> int:
        """Put up to ``limit`` dead tasks (0 = all) back in the queue; returns how many."""
        return self.connector.requeue_dead(queue, limit)

    def purge_dead_tasks(self, queue: str) -> int:
        """Delete the queue's dead tasks; returns how many."""
        return self.connector.purge_dead(queue)

    def number_of_dead_tasks(self, queue: str) -> int:
        """How many dead tasks the queue has."""
        return self.connector.dead_count(queue)

    def lock(self, name: str) -> Lock:
        """A named lock on this broker."""
        return self.connector.lock(name)

    def close(self) -> None:
        """Close the connector's connections."""
        self.connector.close()
