"""The task object handed to ``Worker.work`` (0.27 fields plus an id and a delivery count),
and the progress record a task reports (``Worker.set_progress``)."""

from __future__ import annotations

import dataclasses
import os
import threading
import time
import typing

__all__ = ["Progress", "Task", "new_task_id", "new_task_ids"]

# A random per-process prefix plus a counter: unique across processes and hosts
# (64 random bits per process), and an order of magnitude cheaper than uuid4 per task.
_id_prefix = ""
_id_next = 0
_id_lock = threading.Lock()


def _new_id_prefix() -> None:
    global _id_prefix, _id_next, _id_lock
    _id_prefix, _id_next, _id_lock = os.urandom(8).hex(), 0, threading.Lock()


def _reserve_ids(count: int) -> tuple[str, int]:
    """This process's id prefix and the first of ``count`` counter values for it."""
    global _id_next
    with _id_lock:
        first = _id_next
        _id_next += count
        return _id_prefix, first


_new_id_prefix()
# A forked child must not repeat its parent's ids.
os.register_at_fork(after_in_child=_new_id_prefix)


def new_task_id() -> str:
    """A new unique task id, such as ``'5f1c0e9a3b7d2c41-17'``."""
    prefix, number = _reserve_ids(1)
    return f"{prefix}-{number}"


def new_task_ids(count: int) -> list[str]:
    """``count`` new unique task ids at once (cheaper per id than ``new_task_id``)."""
    prefix, first = _reserve_ids(count)
    return [f"{prefix}-{number}" for number in range(first, first + count)]


@dataclasses.dataclass
class Task:
    """One unit of work.

    Attributes:
        kwargs: the arguments the producer pushed.
        trace_id: a correlation id; tasks pushed from inside ``work`` inherit it.
        date: Unix seconds when the task was created.
        run_count: how many times it was retried with ``Worker.retry``.
        id: a unique id, kept across retries, requeues and redeliveries.
        deliveries: how many times the broker has handed it out (1 on first run);
            not stored with the task, filled in when it is leased.
        previous: in a workflow (``sergeant.workflow``), what the previous item
            returned: None for the first, a list in group order after a group.
        workflow_id: the workflow this task is a step of, or None.
        scheduled_for: for a task pushed by a schedule (``WorkerConfig.schedules``),
            its tick, as Unix seconds; None for other tasks.
    """

    kwargs: dict[str, typing.Any] = dataclasses.field(default_factory=dict)
    trace_id: str | None = None
    date: float = dataclasses.field(default_factory=time.time)
    run_count: int = 0
    id: str = dataclasses.field(default_factory=new_task_id)
    deliveries: int = dataclasses.field(default=0, compare=False)
    previous: typing.Any = dataclasses.field(default=None, compare=False)
    workflow_id: str | None = None
    #: The step's place in its workflow (``sergeant.broker.flows``); None for plain tasks.
    _flow: dict[str, typing.Any] | None = dataclasses.field(default=None, repr=False, compare=False)
    scheduled_for: float | None = None


class Progress(typing.NamedTuple):
    """The last progress a task recorded with ``Worker.set_progress``.

    Attributes:
        fraction: how much is done, from 0.0 to 1.0.
        message: what the task said with it, or None.
        updated_at: Unix seconds when the task recorded it.
    """

    fraction: float
    message: str | None
    updated_at: float
