"""Checking the per-task keys of ``Worker.push_task`` / ``push_tasks``: unique keys
and group keys."""

from __future__ import annotations

import typing

__all__ = ["checked_groups", "checked_keys"]


def checked_keys(
    keys: typing.Iterable[str | None], count: int, where: str, kind: str, one_for_all: str = ""
) -> list[str | None]:
    """``keys`` as a list, refused unless one per task, each None or a non-empty str.

    Args:
        kind: what the keys are, in messages (``'unique'``, ``'group'``).
        one_for_all: added to the count message where one key may serve all tasks.
    """
    found = list(keys)
    if len(found) != count:
        raise ValueError(
            f"{where}({kind}_keys) has {len(found)} keys for {count} tasks; give one "
            f"(or None) per task{one_for_all}"
        )
    for index, key in enumerate(found):
        if key is None:
            continue
        if not isinstance(key, str):
            raise TypeError(f"{where}: {kind} key {index} is a {type(key).__name__}, not a str")
        if not key:
            raise ValueError(f"{where}: {kind} key {index} is empty; use a non-empty str")
    return found


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
    return checked_keys(group_keys, count, where, "group", ", or one str for all")
