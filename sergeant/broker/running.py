"""What a worker process is running, kept where its supervisor can read it after a death.

The supervisor passes a file to each worker process it starts
(``python -m sergeant.slave --running-file PATH``). The worker maps it and writes the
lease of the task it hands to the executor, and clears it when the task is settled:
stores into shared memory, no system call. When the process dies (a signal,
``os._exit``, the watchdog's kill) the page cache still holds them, so the supervisor
knows which task was running and charges that delivery to it
(``Connector.charge_many``), while every other lease of the dead process goes back
uncharged (``Connector.release_owned``).

The file is 8-byte words. Word 0 is the form (:data:`WIDE`, :data:`BY_SLOT`,
:data:`BY_TOKEN`), then the cells:

* the lean forms, for one executor thread on a connector whose
  ``Connector.names_running_by`` says how a lease is named cheaply: word 1 marks the
  running task (0: none) by its slot in its batch (Redis: words 2 and 3 hold the
  batch's token and node, written once per batch) or by its token (SQLite); word 4
  is 1 when the worker charged the task itself before ending (it raised
  ``SystemExit`` or another ``BaseException``). The hot path costs one store per
  task (the next task's mark replaces a settled one's) and one per batch;
* the wide form, one :data:`CELL` per executor thread: state (:data:`IDLE`,
  :data:`RUNNING`, :data:`CHARGED`), the token (two words: a MongoDB token is 128
  bits), deliveries, node, slot and item id.

Without a file (no supervisor) the words live in this process's memory only.
"""

from __future__ import annotations

import dataclasses
import mmap
import os
import struct
import threading

from sergeant.connector import Delivery

__all__ = [
    "BY_SLOT",
    "BY_TOKEN",
    "CHARGED",
    "IDLE",
    "RUNNING",
    "WIDE",
    "RunningCell",
    "RunningRecord",
    "file_path",
    "read_running",
    "use_file",
]

IDLE, RUNNING, CHARGED = 0, 1, 2
#: The forms of the file (its word 0).
WIDE, BY_SLOT, BY_TOKEN = 0, 1, 2
#: The lean forms' words: the running mark, the batch token and node, charged.
MARK, BATCH_TOKEN, BATCH_NODE, CHARGED_FLAG = 1, 2, 3, 4
_HEADER = 8  # bytes before the first wide cell: the form word
#: state, token low and high words, deliveries, node, slot, item id (UTF-8, NUL-padded).
CELL = struct.Struct("<qQQiii36s")
_LOW = (1 << 64) - 1

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


#: The lean form for each ``Connector.names_running_by``.
_LEAN_FORMS: dict[str | None, int] = {"slot": BY_SLOT, "token": BY_TOKEN}
#: The Delivery field the lean forms mark a running task by: slot, token.
_MARK_FIELDS = {BY_SLOT: 5, BY_TOKEN: 2}
#: The field the wide form's scratch marks take: deliveries, a small int whatever the
#: token (the wide form writes its cell in ``start`` instead).
_SCRATCH_FIELD = 3


class RunningRecord:
    """This process's running tasks.

    Args:
        threads: how many tasks may run at once (``number_of_threads``).
        names_running_by: the connector's ``names_running_by``; with one thread it
            chooses a lean form, else (or with None) the form is :data:`WIDE`.
    """

    def __init__(self, threads: int, names_running_by: str | None = None) -> None:
        self.form = _LEAN_FORMS.get(names_running_by, WIDE) if threads == 1 else WIDE
        #: True for a lean form: the caller marks tasks itself (see :meth:`batch_marks`).
        self.lean = self.form != WIDE
        self.cells = max(1, threads)
        size = _HEADER + self.cells * CELL.size
        if _file_path is None:
            self._buffer: bytearray | mmap.mmap = bytearray(size)
        else:
            fd = os.open(_file_path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                os.ftruncate(fd, 0)  # nothing of an earlier process survives
                os.ftruncate(fd, size)
                self._buffer = mmap.mmap(fd, size)  # unmapped with this object
            finally:
                os.close(fd)
        #: The file as 8-byte words: the consumer writes the lean form itself.
        self.words = memoryview(self._buffer).cast("q")
        self.words[0] = self.form
        self._pack = CELL.pack_into
        self._threads: dict[int, int] = {}
        self._lock = threading.Lock()
        self._scratch = memoryview(bytearray(16)).cast("q")

    def batch_marks(self, first: Delivery | None) -> tuple[memoryview, int]:
        """Where the caller marks each task of a new batch as running, as it hands it
        out: ``words[MARK] = delivery[field]``; ``first`` is the batch's first lease.

        By slot, the batch's token and node are written here, once (one lease call:
        one token, one node). With the wide form the marks go to a scratch buffer
        (``start`` writes the cell).
        """
        if not self.lean:
            return self._scratch, _SCRATCH_FIELD
        if self.form == BY_SLOT and first is not None:
            self.words[BATCH_TOKEN] = first.token
            self.words[BATCH_NODE] = first.node
        return self.words, _MARK_FIELDS[self.form]

    def cell_of_this_thread(self) -> int:
        """The wide cell of the calling thread (one thread: always 0)."""
        if self.cells == 1:
            return 0
        ident = threading.get_ident()
        cell = self._threads.get(ident)
        if cell is None:
            with self._lock:
                cell = self._threads[ident] = len(self._threads) % self.cells
        return cell

    def start(self, cell: int, delivery: Delivery) -> None:
        """``delivery``'s task starts in wide cell ``cell``."""
        _, item_id, token, deliveries, node, slot = delivery
        self._pack(
            self._buffer,
            _HEADER + cell * CELL.size,
            RUNNING,
            token & _LOW,
            token >> 64 & _LOW,
            deliveries,
            node,
            slot,
            item_id.encode(),
        )

    def clear(self, cell: int) -> None:
        """The task of ``cell`` is settled."""
        if self.form == WIDE:
            self.words[_state_word(cell)] = IDLE
        else:
            self.words[MARK] = 0

    def charged(self, cell: int) -> None:
        """The task of ``cell`` was charged by this process (it is ending because of it)."""
        if self.form == WIDE:
            self.words[_state_word(cell)] = CHARGED
        else:
            self.words[CHARGED_FLAG] = 1

    def clear_running(self) -> None:
        """Nothing runs any more (the tasks were given back); charged marks stay."""
        words = self.words
        if self.form != WIDE:
            if not words[CHARGED_FLAG]:
                words[MARK] = 0
            return
        for cell in range(self.cells):
            if words[_state_word(cell)] == RUNNING:
                words[_state_word(cell)] = IDLE


def _state_word(cell: int) -> int:
    return (_HEADER + cell * CELL.size) // 8


def read_running(path: str) -> list[RunningCell]:
    """What ``path`` says runs (or was charged); [] when there is no such file."""
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError:
        return []
    if len(data) < _HEADER + CELL.size:
        return []
    form, mark, token, node, charged = struct.unpack_from("<5q", data)
    if form != WIDE:
        if not mark:
            return []
        state = CHARGED if charged else RUNNING
        if form == BY_SLOT:
            return [RunningCell(state, Delivery(b"", "", token, 0, node, mark))]
        return [RunningCell(state, Delivery(b"", "", mark, 0, 0, 0))]
    found = []
    for offset in range(_HEADER, len(data) - CELL.size + 1, CELL.size):
        state, low, high, deliveries, node, slot, raw_id = CELL.unpack_from(data, offset)
        if state != IDLE:
            item_id = raw_id.rstrip(b"\0").decode("utf-8", "replace")
            delivery = Delivery(b"", item_id, _token(low, high), deliveries, node, slot)
            found.append(RunningCell(state, delivery))
    return found


def _token(low: int, high: int) -> int:
    """The token written as two words. An all-ones high word is a negative token (SQLite's
    released items have negative ones); no MongoDB token, a UUID4, has that high word."""
    if high == _LOW:
        return low - (1 << 64)
    return low | high << 64
