"""Grouped items of a connector spread over several members: a group lives on the
member its key hashes to (CRC32 of queue and key, as unique keys), so each member
holds whole groups and enforces their limits in its own atomic step."""

from __future__ import annotations

import collections
from collections.abc import Sequence

from sergeant.connector import _group_keys, _unique, base
from sergeant.connector.base import GroupCount, GroupLimits, Priority

__all__ = ["SpreadGroups"]


class SpreadGroups:
    """``push_grouped``, ``set_group_limits`` and ``group_counts`` over ``_members``."""

    _members: list[base.Connector]

    def push_grouped(
        self,
        queue: str,
        items: Sequence[bytes],
        group_keys: Sequence[str],
        priority: Priority = "NORMAL",
        consumable_from: float = 0.0,
    ) -> None:
        """Push each item to its group's member; each member's part is one push there."""
        members = self._members
        if len(members) == 1:
            members[0].push_grouped(queue, items, group_keys, priority, consumable_from)
            return
        _group_keys.check(items, group_keys)
        parts: dict[int, list[int]] = collections.defaultdict(list)
        for position, key in enumerate(group_keys):
            parts[_unique.member_of(queue, key, len(members))].append(position)
        for index, positions in parts.items():
            members[index].push_grouped(
                queue,
                [items[p] for p in positions],
                [group_keys[p] for p in positions],
                priority,
                consumable_from,
            )

    def set_group_limits(self, queue: str, limits: GroupLimits) -> None:
        """Give every member the limits: each enforces them on the groups it holds."""
        for member in self._members:
            member.set_group_limits(queue, limits)

    def group_counts(self, queue: str, limit: int = 20) -> list[GroupCount]:
        """Each member's largest groups, merged, largest first."""
        ready: collections.Counter[str] = collections.Counter()
        leased: collections.Counter[str] = collections.Counter()
        for member in self._members:
            for count in member.group_counts(queue, limit):
                ready[count.group] += count.ready
                leased[count.group] += count.leased
        counts = [GroupCount(group, ready[group], leased[group]) for group in ready | leased]
        counts.sort(key=lambda c: (-(c.ready + c.leased), c.group))
        return counts[: max(limit, 0)]
