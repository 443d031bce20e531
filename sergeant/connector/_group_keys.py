"""What the engines that store groups share: the argument check of ``push_grouped``,
the limits a connector object holds per queue (``set_group_limits``), and the walk
of a queue's ring of members (its groups, and its ungrouped items)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sergeant.connector._records import GroupLimits

__all__ = ["NO_LIMITS", "HeldLimits", "check", "walk_ring"]

#: No bound at all: what a queue's leases obey until ``set_group_limits``.
NO_LIMITS = GroupLimits()


class HeldLimits:
    """``set_group_limits`` kept by the connector object, read by its leases."""

    _group_limits: dict[str, GroupLimits]

    def set_group_limits(self, queue: str, limits: GroupLimits) -> None:
        """See :meth:`sergeant.connector.Connector.set_group_limits`: held by this
        object, passed to each of its leases of ``queue``."""
        if limits == NO_LIMITS:
            self._group_limits.pop(queue, None)
        else:
            self._group_limits[queue] = limits

    def _limits_of(self, queue: str) -> GroupLimits:
        return self._group_limits.get(queue, NO_LIMITS)


def check(items: Sequence[bytes], group_keys: Sequence[str]) -> None:
    """Raise ``ValueError`` unless there is one non-empty string key per item."""
    if len(group_keys) != len(items):
        raise ValueError(
            f"push_grouped got {len(items)} items and {len(group_keys)} group keys; "
            "give one group key per item"
        )
    for key in group_keys:
        if not isinstance(key, str) or not key:
            raise ValueError(f"group key {key!r} is not a non-empty string; name each group")


def walk_ring(
    position: str | None,
    count: int,
    next_member: Callable[[str | None], str | None],
    take_from: Callable[[str], bool],
) -> str | None:
    """Visit the ring from the member after ``position``, taking one item per member
    per visit (``take_from(member)``: False when it gave none) until ``count`` are
    taken or a whole round gave none; the last member taken from, or None.

    Args:
        next_member: the member after a position (None: the first), wrapping; None
            when the ring is empty.
    """
    idle: set[str] = set()  # the members visited since the last take
    taken = 0
    last_taken: str | None = None
    while taken < count:
        member = next_member(position)
        if member is None or member in idle:
            break
        position = member
        if not take_from(member):
            idle.add(member)
            continue
        taken += 1
        last_taken = member
        idle.clear()
    return last_taken
