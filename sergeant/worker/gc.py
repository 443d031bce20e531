"""The garbage collector while the work loop runs.

A batch of tasks keeps thousands of tracked objects alive at once (each task, its
kwargs, its lease), so with CPython's default gen-0 threshold (700) the collector
runs several times per batch of 1,000 and, through the older generations, walks
every live object again and again: about 15% of a batched loop's CPU. The loop
raises the gen-0 threshold to :data:`LOOP_GEN0_THRESHOLD` while it runs and puts
it back afterwards. Cycles are still collected, a few times less often.
"""

from __future__ import annotations

import contextlib
import gc
import typing

__all__ = ["LOOP_GEN0_THRESHOLD", "fewer_collections"]

#: CPython's own setting; any other means the process chose its own, which is kept.
CPYTHON_DEFAULT = (700, 10, 10)
#: Gen-0 threshold while the loop runs.
LOOP_GEN0_THRESHOLD = 10_000


@contextlib.contextmanager
def fewer_collections() -> typing.Iterator[None]:
    """Raise the gen-0 threshold for the block, unless the process set its own."""
    before = gc.get_threshold()
    if before != CPYTHON_DEFAULT:
        yield
        return
    gc.set_threshold(LOOP_GEN0_THRESHOLD, *before[1:])
    try:
        yield
    finally:
        if gc.get_threshold()[0] == LOOP_GEN0_THRESHOLD:  # not changed meanwhile
            gc.set_threshold(*before)
