"""The SQLite broker's waiting items, listed and removed (see ``_waiting_contract``).

An item's ``ref`` is its row id in ASCII digits. A dead item revived by
``requeue_dead`` comes back under the same id, so it is the same item again.
"""

from __future__ import annotations

from collections.abc import Sequence

from sergeant.connector.base import Waiting
from sergeant.connector.sqlite import sql
from sergeant.connector.sqlite.session import Session

__all__ = ["WaitingItems"]


def _lane(lane: int, priority: int, waiting: str, order: str) -> str:
    # Each lane repeats its partial index's WHERE terms, and is cut at the limit
    # before the merge, so the sort holds at most six limits of rows.
    return f"""SELECT * FROM (SELECT {lane} AS lane, eta, seq, id, payload FROM tasks
        WHERE queue = ?1 AND {waiting} AND priority = {priority}
        ORDER BY {order} LIMIT ?2)"""


_DELAYED = "deadline IS NULL AND eta > 0"

# Ready before delayed per priority, HIGH first; ready in push order (ungrouped and
# grouped rows, each on its index, merged by seq), delayed in the order they fall due
# (see ``sql.SELECT_DUE``). One statement, so one snapshot. (queue, limit) as ?1, ?2.
SELECT_WAITING = f"""SELECT id, payload FROM (
    {_lane(0, sql.PRIORITY_HIGH, sql.PLAIN_READY, "seq")}
    UNION ALL {_lane(0, sql.PRIORITY_HIGH, sql.GROUPED_READY, "seq")}
    UNION ALL {_lane(1, sql.PRIORITY_HIGH, _DELAYED, "eta, seq")}
    UNION ALL {_lane(2, sql.PRIORITY_NORMAL, sql.PLAIN_READY, "seq")}
    UNION ALL {_lane(2, sql.PRIORITY_NORMAL, sql.GROUPED_READY, "seq")}
    UNION ALL {_lane(3, sql.PRIORITY_NORMAL, _DELAYED, "eta, seq")}
) ORDER BY lane, eta, seq LIMIT ?2"""

# A leased row has a deadline, so it stays: (id, queue).
DELETE_WAITING = "DELETE FROM tasks WHERE id = ? AND queue = ? AND deadline IS NULL"


class WaitingItems(Session):
    """``waiting`` and ``remove_waiting`` of ``sergeant.connector.sqlite.Connector``."""

    def waiting(self, queue: str, limit: int = 100_000) -> list[Waiting]:
        """See :meth:`sergeant.connector.Connector.waiting`."""
        if limit <= 0:
            return []
        rows = self._rows(SELECT_WAITING, (queue, limit))
        return [Waiting(str(item_id).encode(), payload) for item_id, payload in rows]

    def remove_waiting(self, queue: str, items: Sequence[Waiting]) -> int:
        """See :meth:`sergeant.connector.Connector.remove_waiting`: one transaction; a
        unique key lives on its row, so deleting the row frees it."""
        # Refs that are not digits cannot be this broker's: skipped.
        ids = {int(item.ref) for item in items if item.ref.isdigit()}
        if not ids:
            return 0
        removed = self._draining(lambda: self._remove_now(queue, sorted(ids)))
        self._maintain()
        return removed

    def _remove_now(self, queue: str, ids: list[int]) -> int:
        with self._transaction() as conn:
            return conn.executemany(DELETE_WAITING, ((i, queue) for i in ids)).rowcount
