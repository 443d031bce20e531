"""The RQ task, in a module of its own: RQ refuses functions defined in ``__main__``."""

from __future__ import annotations

seen: set[int] = set()


def record(i: int) -> None:
    """The task: record ``i``."""
    seen.add(i)
