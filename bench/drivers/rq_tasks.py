"""The RQ task, in a module of its own: RQ refuses functions defined in ``__main__``."""

from __future__ import annotations

import time

seen: set[int] = set()
#: When the first task started and the latest one ended (``time.time()``).
stamps = [0.0, 0.0]


def record(i: int) -> None:
    """The task: record ``i``."""
    if not seen:
        stamps[0] = time.time()
    seen.add(i)
    stamps[1] = time.time()
