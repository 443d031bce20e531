"""Checking the group keys of ``Worker.push_task`` / ``push_tasks``."""

from __future__ import annotations

import typing

__all__ = ["checked_groups"]


def checked_groups(
    group_keys: typing.Sequence[str | None] | str,
    count: int,
    where: str,
    unique_keys: typing.Sequence[str | None] | None,
) -> list[str | None]:
    """The group keys as a list of one per task (a str: the same for all), refused
    unless each is None or a non-empty str, and never together with unique keys."""
    if unique_keys is not None:
        raise ValueError(
            f"{where}: a task cannot have both a unique key and a group key; push "
            "grouped tasks without unique keys"
        )
    if isinstance(group_keys, str):
        group_keys = [group_keys] * count
    if isinstance(group_keys, bytes):
        raise TypeError(f"{where}(group_keys) is bytes; pass a str or a list of str")
    keys = list(group_keys)
    if len(keys) != count:
        raise ValueError(
            f"{where}(group_keys) has {len(keys)} keys for {count} tasks; give one "
            "(or None) per task, or one str for all"
        )
    for index, key in enumerate(keys):
        if key is None:
            continue
        if not isinstance(key, str):
            raise TypeError(f"{where}: group key {index} is a {type(key).__name__}, not a str")
        if not key:
            raise ValueError(f"{where}: group key {index} is empty; use a non-empty str")
    return keys
