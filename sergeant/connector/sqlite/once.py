"""The SQLite once push (see ``sergeant.connector._once_contract``): the mark (a row of
``once_keys``, see ``schema``) and the pushed row are written in one ``BEGIN
IMMEDIATE`` transaction, so a crash leaves both or neither, and two processes cannot
both find the key free."""

from __future__ import annotations

import time

from sergeant.connector import _once_contract
from sergeant.connector.base import Priority
from sergeant.connector.sqlite import sql
from sergeant.connector.sqlite.session import Session

__all__ = ["SWEEP_BATCH", "Once"]

#: Most expired marks one push deletes besides its own.
SWEEP_BATCH = 16

# (now, limit): a few expired marks.
SWEEP_EXPIRED = """DELETE FROM once_keys WHERE rowid IN
    (SELECT rowid FROM once_keys WHERE expires_at <= ? ORDER BY expires_at LIMIT ?)"""
# (queue, once_key, now): this key's mark, if it has expired.
DROP_EXPIRED = "DELETE FROM once_keys WHERE queue = ? AND once_key = ? AND expires_at <= ?"
# (queue, once_key, expires_at): the mark, unless the key is marked.
MARK = "INSERT OR IGNORE INTO once_keys (queue, once_key, expires_at) VALUES (?, ?, ?)"


class Once(Session):
    """``push_once`` of ``sergeant.connector.sqlite.Connector``."""

    def push_once(
        self,
        queue: str,
        item: bytes,
        once_key: str,
        keep_seconds: float,
        priority: Priority = "NORMAL",
    ) -> bool:
        """See :meth:`sergeant.connector.Connector.push_once`: the mark and the push in
        one transaction."""
        _once_contract.check(keep_seconds, priority)
        rank = sql.priority_rank(priority)

        def push() -> bool:
            self._check_room()
            with self._transaction() as conn:
                now = time.time()
                conn.execute(SWEEP_EXPIRED, (now, SWEEP_BATCH))
                conn.execute(DROP_EXPIRED, (queue, once_key, now))
                if conn.execute(MARK, (queue, once_key, now + keep_seconds)).rowcount != 1:
                    return False
                seq = sql.advance(conn, sql.ADVANCE_TAIL, 1)
                conn.execute(sql.INSERT_TASK, (queue, rank, seq, 0.0, bytes(item)))
                return True

        return self._pushing(push)
