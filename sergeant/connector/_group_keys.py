"""The argument check of ``push_grouped``, shared by the engines that store groups."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["check"]


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
