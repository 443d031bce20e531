"""``push_once`` over independent member connectors: the key and its item live on the
member the key hashes to (``_unique.member_of``), so the check and the push are one
step on one member."""

from __future__ import annotations

import typing

from sergeant.connector import _unique
from sergeant.connector._queue_contract import Priority

if typing.TYPE_CHECKING:
    from sergeant.connector.base import Connector

__all__ = ["SpreadOnce"]


class SpreadOnce:
    """The once push of ``sergeant.connector._spread.Spread`` (a mixin before it)."""

    _members: list[Connector]

    def push_once(
        self,
        queue: str,
        item: bytes,
        once_key: str,
        keep_seconds: float,
        priority: Priority = "NORMAL",
    ) -> bool:
        """See :meth:`sergeant.connector.Connector.push_once`."""
        member = self._members[_unique.member_of(queue, once_key, len(self._members))]
        return member.push_once(queue, item, once_key, keep_seconds, priority)
