"""Reading and removing the items still waiting in a queue (ready or delayed), one by
one: what cancelling a task that has not started needs.

These are scans, for an operator's or a program's occasional call, not for the path
of every task: :meth:`WaitingContract.waiting` reads up to ``limit`` items.
"""

from __future__ import annotations

import typing

from sergeant.connector._records import Waiting

__all__ = ["WaitingContract"]


class WaitingContract:
    """Waiting items, listed and removed."""

    def waiting(self, queue: str, limit: int = 100_000) -> list[Waiting]:
        """Up to ``limit`` ready and delayed items of ``queue``, with their payloads:
        HIGH before NORMAL, ready before delayed, in the order they would be handed out
        (per node on a spread connector). Leased and dead items are not listed."""
        raise NotImplementedError(f"{type(self).__name__} does not list waiting items")

    def remove_waiting(self, queue: str, items: typing.Sequence[Waiting]) -> int:
        """Remove those of ``items`` (from :meth:`waiting`) that are still ready or
        delayed, each in one atomic step, so an item a lease took meanwhile stays
        leased. A removed item is gone for good: its unique key is free.

        Returns:
            How many were removed.
        """
        raise NotImplementedError(f"{type(self).__name__} does not remove waiting items")
