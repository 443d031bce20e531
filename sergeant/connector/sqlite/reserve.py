"""Room kept on the disk of the SQLite broker, so that a full disk still drains.

On a full disk SQLite refuses every write, acknowledgements included: in WAL mode
a DELETE appends to the log too, and the checkpoint that lets the log start over
may have to grow the file. So the connector keeps a file of :data:`RESERVE_BYTES`
beside the broker file (``<file_path>-reserve``, allocated, never read) while the
disk has room for it:

* a write that hands out, settles or deletes what the broker holds and fails for
  lack of space deletes the reserve and runs again: the log and the checkpoint get
  the room, and the acknowledgements that follow free pages inside the file;
* while the reserve is missing, a push is refused unless the file's own free pages
  (left by acknowledgements) hold as much as the reserve: a push then fills those,
  not the disk, so pushes never take the room that draining needs;
* the reserve is made again, tried at most every :data:`REMAKE_SECONDS` by a push,
  once the disk has room for it.

The reserve is twice the log's usual largest size (SQLite checkpoints it at 1,000
pages, 4 MiB with the default page size), which bounds what the checkpoint adds.
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
import time

__all__ = ["REMAKE_SECONDS", "RESERVE_BYTES", "Reserve"]

#: Size of the reserve file.
RESERVE_BYTES = 8 << 20
#: Shortest pause, in seconds, between two attempts of one process to make it again.
REMAKE_SECONDS = 1.0

_BLOCK = 1 << 20
# fallocate is not supported there: the reserve is written instead.
_NO_FALLOCATE = (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL)


class Reserve:
    """The reserve file of one broker file.

    Args:
        file_path: the broker's SQLite file.
        size: the reserve's size in bytes.
    """

    def __init__(self, file_path: str, size: int = RESERVE_BYTES) -> None:
        self.path = f"{file_path}-reserve"
        self.size = size
        self._next_try = 0.0
        self._lock = threading.Lock()

    def present(self) -> bool:
        """Whether the reserve file exists (another process may have made or spent it)."""
        return os.path.exists(self.path)

    def make(self) -> bool:
        """Make the reserve if it is missing and the disk has room; True if it is there.

        Tried at most once per :data:`REMAKE_SECONDS` by this process: on a full disk
        every push asks.
        """
        if self.present():
            return True
        with self._lock:
            now = time.monotonic()
            if now < self._next_try:
                return False
            self._next_try = now + REMAKE_SECONDS
        return self._allocate()

    def release(self) -> bool:
        """Delete the reserve, freeing its room; True if this call deleted it."""
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            return False
        return True

    def _allocate(self) -> bool:
        """Allocate a whole reserve under a temporary name, then move it in place."""
        temporary = f"{self.path}.{os.getpid()}.tmp"
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        except OSError:
            return False
        try:
            try:
                _fill(fd, self.size)
            finally:
                os.close(fd)
            os.replace(temporary, self.path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            return False
        return True


def _fill(fd: int, size: int) -> None:
    """Give ``fd`` ``size`` bytes of disk: allocated, or written where that is not
    supported (random bytes, which a compressing file system cannot shrink)."""
    try:
        os.posix_fallocate(fd, 0, size)
        return
    except OSError as exc:
        if exc.errno not in _NO_FALLOCATE:
            raise
    block = os.urandom(_BLOCK)
    for start in range(0, size, _BLOCK):
        part = block[: size - start]
        if os.write(fd, part) < len(part):
            raise OSError(errno.ENOSPC, "no room for the reserve")
    os.fsync(fd)
