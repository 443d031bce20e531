"""Waiting items of a connector spread over several members: each listed with its
member's index as its node, and removed on that member."""

from __future__ import annotations

import collections
from collections.abc import Sequence

from sergeant.connector import base
from sergeant.connector.base import Waiting

__all__ = ["SpreadWaiting"]


class SpreadWaiting:
    """``waiting`` and ``remove_waiting`` over ``_members``."""

    _members: list[base.Connector]

    def waiting(self, queue: str, limit: int = 100_000) -> list[Waiting]:
        """Up to ``limit`` waiting items of every member, member by member."""
        found: list[Waiting] = []
        for node, member in enumerate(self._members):
            left = limit - len(found)
            if left <= 0:
                break
            found += [item._replace(node=node) for item in member.waiting(queue, left)]
        return found

    def remove_waiting(self, queue: str, items: Sequence[Waiting]) -> int:
        """Remove each item on the member that listed it."""
        by_node: dict[int, list[Waiting]] = collections.defaultdict(list)
        for item in items:
            by_node[item.node].append(item._replace(node=0))
        return sum(
            self._members[node].remove_waiting(queue, some) for node, some in by_node.items()
        )
