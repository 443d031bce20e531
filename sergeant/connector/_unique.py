"""Shared steps of ``Connector.push_unique``: argument checks, and the member that
holds a key when a queue is spread over independent nodes."""

from __future__ import annotations

import typing
import zlib

__all__ = ["check", "groups"]


def check(
    items: typing.Sequence[bytes],
    unique_keys: typing.Sequence[str | None],
    task_ids: typing.Sequence[str],
) -> None:
    """Raise ``ValueError`` unless there is one key (or None) and one task id per item."""
    if not len(items) == len(unique_keys) == len(task_ids):
        raise ValueError(
            f"push_unique got {len(items)} items, {len(unique_keys)} unique keys and "
            f"{len(task_ids)} task ids; give one of each per item"
        )


def member_of(queue: str, unique_key: str, member_count: int) -> int:
    """The member (of ``member_count`` independent ones, or shards) that holds
    ``unique_key``: stable across processes, so every pusher checks the same one.

    A jump consistent hash (Lamping and Veach) of the key's CRC32: when the count
    grows from n to n + 1, only the keys the new member takes move (about one in
    n + 1), where a plain modulo would move most of them.
    """
    if member_count == 1:
        return 0
    key = zlib.crc32(f"{queue}\x00{unique_key}".encode())
    member, candidate = -1, 0
    while candidate < member_count:
        member = candidate
        key = (key * 2862933555777941757 + 1) & 0xFFFFFFFFFFFFFFFF
        candidate = int((member + 1) * ((1 << 31) / ((key >> 33) + 1)))
    return member


def groups(
    queue: str, unique_keys: typing.Sequence[str | None], member_count: int
) -> dict[int, list[int]]:
    """Item positions per member: keyed items on their key's member, keyless ones on
    the first keyed item's (member 0 when none has a key), each list in push order."""
    default = next(
        (member_of(queue, key, member_count) for key in unique_keys if key is not None), 0
    )
    found: dict[int, list[int]] = {}
    for position, key in enumerate(unique_keys):
        member = default if key is None else member_of(queue, key, member_count)
        found.setdefault(member, []).append(position)
    return found
