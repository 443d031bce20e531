"""Waiting items of a connector spread over several members: each listed with its
member's index as its node, and removed on that member; and requests started
together, which wait on the single member's own way (none with several)."""

from __future__ import annotations

import collections
import contextlib
from collections.abc import Sequence

from sergeant.connector import base
from sergeant.connector.base import Waiting

__all__ = ["SpreadWaiting"]


class SpreadWaiting:
    """``waiting`` and ``remove_waiting`` over ``_members``; ``sending_together``."""

    _members: list[base.Connector]

    def sending_together(self) -> contextlib.AbstractContextManager[None]:
        """The member's own block with one member; with several, nothing changes."""
        if len(self._members) == 1:
            return self._members[0].sending_together()
        return contextlib.nullcontext()

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
