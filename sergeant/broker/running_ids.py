"""The ids of a worker process's leased batch, where its supervisor can read them.

A cancelled task that holds the GIL cannot be stopped from inside its process: no
heartbeat, signal handler or thread runs there, so the process never even learns of
the cancel. Its supervisor can: it reads the queue's cancel requests and kills the
child whose running task was cancelled once ``Timeouts.grace_period`` has passed
(see ``sergeant.process.cancels``). The running file (``sergeant.broker.running``)
says which lease runs, cheaply, but not which task; this file, ``<running file>.ids``,
maps the leases of the current batch to their task ids.

It is written once per batch, with one ``pwrite`` (never per task), and only under a
supervisor. A 32-byte header (form, batch token, first slot, count), then UTF-8
lines: with a first slot (the by-slot form, Redis, its slots in a row) the task ids
in slot order; otherwise ``key id`` pairs, the key being the lease's slot (by-slot)
or token. A reader checks the header against the running file, so a batch replaced
meanwhile is never mistaken for the running one.
"""

from __future__ import annotations

import contextlib
import os
import struct
import typing

from sergeant.broker import running as _running
from sergeant.connector import Delivery

if typing.TYPE_CHECKING:
    from sergeant.objects import Task

__all__ = ["BatchIds", "ids_path", "running_task_ids"]

_HEADER = struct.Struct("<qqqq")


def ids_path(running_path: str) -> str:
    """The ids file beside the running file ``running_path``."""
    return f"{running_path}.ids"


class BatchIds:
    """Writes the current batch's ids (a no-op object when there is no supervisor).

    Args:
        form: the running file's form (``RunningRecord.form``).
    """

    def __init__(self, form: int) -> None:
        self.form = form
        running = _running.file_path()
        self._fd: int | None = None
        if running is not None:
            self._fd = os.open(ids_path(running), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)

    def note(self, tasks: typing.Sequence[Task], deliveries: typing.Sequence[Delivery]) -> None:
        """The batch of ``tasks`` (leased as ``deliveries``, in the same order) is next."""
        fd = self._fd
        if fd is None or not tasks:
            return
        first, by_slot = deliveries[0], self.form == _running.BY_SLOT
        if by_slot and deliveries[-1].slot - first.slot == len(tasks) - 1:
            body, first_slot = "\n".join([task.id for task in tasks]), first.slot
        else:  # pairs: a task dropped from the batch (undecodable) breaks the row
            body, first_slot = (
                "\n".join(
                    [f"{_key(d, by_slot)} {t.id}" for t, d in zip(tasks, deliveries, strict=False)]
                ),
                0,
            )
        token = first.token if by_slot else 0  # one word (a MongoDB token has two)
        data = _HEADER.pack(self.form, token, first_slot, len(tasks)) + body.encode()
        with contextlib.suppress(OSError):  # a full disk only loses the supervisor's view
            os.pwrite(fd, data, 0)

    def close(self) -> None:
        """Close the file (the supervisor removes it)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


def running_task_ids(running_path: str) -> dict[str, tuple[int, int]]:
    """The ids of the tasks the worker of ``running_path`` runs now, each with the mark
    it runs under (token, slot), to check later that it still runs; {} if unknown."""
    cells = [c for c in _running.read_running(running_path) if c.state == _running.RUNNING]
    if not cells:
        return {}
    try:
        with open(ids_path(running_path), "rb") as file:
            data = file.read()
        form, batch_token, first_slot, count = _HEADER.unpack_from(data)
        lines = data[_HEADER.size :].decode("utf-8", "replace").split("\n")
    except (OSError, struct.error):
        return {}
    by_slot = form == _running.BY_SLOT
    if by_slot and any(cell.delivery.token != batch_token for cell in cells):
        return {}  # the running file names a batch this file no longer holds
    lines = lines[:count]
    if first_slot:
        ids = {first_slot + index: task_id for index, task_id in enumerate(lines)}
    else:
        ids = {}
        for line in lines:
            key, _, task_id = line.partition(" ")
            with contextlib.suppress(ValueError):
                ids[int(key)] = task_id
    found: dict[str, tuple[int, int]] = {}
    for cell in cells:
        running_id = ids.get(_key(cell.delivery, by_slot))
        if running_id:
            found[running_id] = (cell.delivery.token, cell.delivery.slot)
    return found


def _key(delivery: Delivery, by_slot: bool) -> int:
    return delivery.slot if by_slot else delivery.token
