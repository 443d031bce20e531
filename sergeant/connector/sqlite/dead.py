"""Dead letters of the SQLite broker: moving leased items to the ``dead`` table and back.

The ``dead`` table is described in ``sergeant.connector.sqlite.schema``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from sergeant.connector.base import DeadLetter, Delivery
from sergeant.connector.sqlite import sql
from sergeant.connector.sqlite.session import Session

__all__ = ["DeadLetters"]


class DeadLetters(Session):
    """The dead-letter operations of ``sergeant.connector.sqlite.Connector``."""

    def dead_letter_many(
        self, queue: str, deliveries: Sequence[Delivery], reason: str, error: str = ""
    ) -> int:
        """See :meth:`sergeant.connector.Connector.dead_letter_many`."""
        held = sql.held_params(queue, deliveries)
        if not held:
            return 0
        return self._draining(lambda: self._dead_letter_now(held, reason, error))

    def _dead_letter_now(self, held: list[tuple[int, str, int]], reason: str, error: str) -> int:
        with self._transaction() as conn:
            now = time.time()
            rows = ((reason, error, now, *row) for row in held)
            moved = conn.executemany(sql.DEAD_LETTER, rows).rowcount
            conn.executemany(sql.ACK, held)
        return moved

    def dead_letters(self, queue: str, limit: int = 100) -> list[DeadLetter]:
        """See :meth:`sergeant.connector.Connector.dead_letters`."""
        rows = self._rows(sql.SELECT_DEAD, (queue, limit))
        return [DeadLetter(str(row[0]), *row[1:6]) for row in rows]

    def requeue_dead(self, queue: str, limit: int = 0) -> int:
        """See :meth:`sergeant.connector.Connector.requeue_dead`."""
        with self._transaction() as conn:
            rows = conn.execute(sql.SELECT_DEAD, (queue, limit if limit > 0 else -1)).fetchall()
            if rows:
                first = sql.advance(conn, sql.ADVANCE_TAIL, len(rows)) - len(rows) + 1
                revived = ((row[0], queue, first + i, row[1], row[7]) for i, row in enumerate(rows))
                conn.executemany(sql.REVIVE_TASK, revived)
                conn.executemany(sql.DELETE_DEAD, ((row[6],) for row in rows))
        return len(rows)

    def purge_dead(self, queue: str) -> int:
        """See :meth:`sergeant.connector.Connector.purge_dead`."""
        purged = self._draining(lambda: self._changed(sql.PURGE_DEAD, (queue,)))
        self._maintain()
        return purged

    def dead_count(self, queue: str) -> int:
        """See :meth:`sergeant.connector.Connector.dead_count`."""
        return int(self._rows(sql.COUNT_DEAD, (queue,))[0][0])
