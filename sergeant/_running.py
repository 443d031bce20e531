"""What a worker process is running, kept where its supervisor can read it after a death.

The supervisor passes a file to each worker process it starts
(``python -m sergeant.slave --running-file PATH``). The worker maps it and, for each
executor thread, writes the lease of the task it starts into that thread's cell and
clears the cell when the task is settled: two writes to shared memory per task, no
system call. When the process dies (a signal, ``os._exit``, the watchdog's kill) the
page cache still holds the cells, so the supervisor knows which task was running and
charges that delivery to it (``Connector.charge_many``), while every other lease of the
dead process goes back uncharged (``Connector.release_owned``).

A cell is nine 8-byte words. States: :data:`IDLE`; :data:`RUNNING`, the hot path's
narrow form, where words 1-3 are the token, slot and node (for connectors whose
``Connector.fenced_by_token`` is True: Redis and SQLite name a lease by those alone);
:data:`RUNNING_WIDE`, the whole :data:`CELL` (a 128-bit MongoDB token, and the item
id); and :data:`CHARGED` when the worker charged the task itself before ending (it
raised ``SystemExit`` or another ``BaseException``).
Without a file (no supervisor) the cells live in this process's memory only.
"""

from __future__ import annotations

import dataclasses
import mmap
import os
import struct
import threading

from sergeant.connector import Delivery

__all__ = [
    "CHARGED",
    "IDLE",
    "RUNNING",
    "RUNNING_WIDE",
    "RunningCell",
    "RunningRecord",
    "file_path",
    "read_running",
    "use_file",
]

IDLE, RUNNING, CHARGED, RUNNING_WIDE = 0, 1, 2, 3
#: state, token low and high words, deliveries, node, slot, item id (UTF-8, NUL-padded).
CELL = struct.Struct("<qQQiii36s")
_LOW = (1 << 64) - 1
_STATE_WORDS = CELL.size // 8  # the state is the first 8-byte word of each cell

_file_path: str | None = None


def use_file(path: str | None) -> None:
    """Keep this process's running tasks in ``path`` (the supervisor's; None: memory)."""
    global _file_path
    _file_path = path


def file_path() -> str | None:
    """The running file given by the supervisor, or None (no supervisor)."""
    return _file_path


@dataclasses.dataclass(frozen=True)
class RunningCell:
    """One cell as the supervisor reads it."""

    state: int
    delivery: Delivery


class RunningRecord:
    """This process's cells: one per executor thread.

    Args:
        threads: how many tasks may run at once (``number_of_threads``).
    """

    def __init__(self, threads: int) -> None:
        self.cells = max(1, threads)
        size = self.cells * CELL.size
        self._mmap: mmap.mmap | None = None
        if _file_path is None:
            self._buffer: bytearray | mmap.mmap = bytearray(size)
        else:
            fd = os.open(_file_path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                os.ftruncate(fd, 0)  # no cell of an earlier process survives
                os.ftruncate(fd, size)
                self._mmap = self._buffer = mmap.mmap(fd, size)
            finally:
                os.close(fd)
        #: The cells as 8-byte words: the consumer writes the narrow form itself.
        self.words = memoryview(self._buffer).cast("q")
        self._pack = CELL.pack_into
        self._threads: dict[int, int] = {}
        self._lock = threading.Lock()

    def cell_of_this_thread(self) -> int:
        """The cell of the calling thread (one thread: always 0)."""
        if self.cells == 1:
            return 0
        ident = threading.get_ident()
        cell = self._threads.get(ident)
        if cell is None:
            with self._lock:
                cell = self._threads[ident] = len(self._threads) % self.cells
        return cell

    def start(self, cell: int, delivery: Delivery) -> None:
        """``delivery``'s task starts in ``cell``."""
        _, item_id, token, deliveries, node, slot = delivery
        self._pack(
            self._buffer,
            cell * CELL.size,
            RUNNING_WIDE,
            token & _LOW,
            token >> 64 & _LOW,
            deliveries,
            node,
            slot,
            item_id.encode(),
        )

    def clear(self, cell: int) -> None:
        """The task of ``cell`` is settled."""
        self.words[cell * _STATE_WORDS] = IDLE

    def charged(self, cell: int) -> None:
        """The task of ``cell`` was charged by this process (it is ending because of it)."""
        self.words[cell * _STATE_WORDS] = CHARGED

    def clear_running(self) -> None:
        """Every running cell is idle again (their tasks were given back)."""
        words = self.words
        for cell in range(self.cells):
            if words[cell * _STATE_WORDS] in (RUNNING, RUNNING_WIDE):
                words[cell * _STATE_WORDS] = IDLE

    def close(self) -> None:
        """Unmap the file (its cells stay there)."""
        self.words.release()
        if self._mmap is not None:
            self._mmap.close()


def read_running(path: str) -> list[RunningCell]:
    """The cells of ``path`` that are not idle; [] when there is no such file."""
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError:
        return []
    found = []
    for offset in range(0, len(data) - CELL.size + 1, CELL.size):
        state, low, high, deliveries, node, slot, raw_id = CELL.unpack_from(data, offset)
        if state == RUNNING:  # narrow: token, slot, node in words 1-3
            token, slot, node = struct.unpack_from("<qqq", data, offset + 8)
            found.append(RunningCell(RUNNING, Delivery(b"", "", token, 0, node, slot)))
        elif state != IDLE:
            item_id = raw_id.rstrip(b"\0").decode("utf-8", "replace")
            delivery = Delivery(b"", item_id, _token(low, high), deliveries, node, slot)
            found.append(RunningCell(RUNNING if state == RUNNING_WIDE else state, delivery))
    return found


def _token(low: int, high: int) -> int:
    """The token written as two words. An all-ones high word is a negative token (SQLite's
    released items have negative ones); no MongoDB token, a UUID4, has that high word."""
    if high == _LOW:
        return low - (1 << 64)
    return low | high << 64
