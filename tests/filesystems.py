"""A small file system of a test's own, to fill: a tmpfs mounted on a temporary directory.

Mounting needs root (or CAP_SYS_ADMIN); where it is refused the fixture that uses
this skips, saying why. The mount is removed at the end, lazily if a process the
test started still holds a file there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

__all__ = ["SmallFilesystem"]


class SmallFilesystem:
    """A tmpfs of ``size_bytes`` mounted on a directory of its own.

    Args:
        size_bytes: its size; tmpfs rounds it up to whole pages.
    """

    def __init__(self, size_bytes: int) -> None:
        self.size_bytes = size_bytes
        self.directory = tempfile.mkdtemp(prefix="sergeant-fs-")
        self.mounted = False

    def mount(self) -> str | None:
        """Mount it; None when mounted, else why it could not be."""
        mount = shutil.which("mount")
        if mount is None:
            return "there is no 'mount' command"
        result = subprocess.run(
            [mount, "-t", "tmpfs", "-o", f"size={self.size_bytes}", "tmpfs", self.directory],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if result.returncode != 0:
            return f"mount -t tmpfs failed: {result.stderr.strip() or result.returncode}"
        self.mounted = True
        return None

    def path(self, name: str) -> str:
        """A path inside it."""
        return os.path.join(self.directory, name)

    def free_bytes(self) -> int:
        """Bytes still free on it."""
        stat = os.statvfs(self.directory)
        return stat.f_bavail * stat.f_frsize

    def fill(self, name: str = "ballast") -> None:
        """Take every free byte with a file (what a runaway log does to a disk)."""
        fd = os.open(self.path(name), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            block = b"\xa5" * 65536
            while True:
                try:
                    if os.write(fd, block) < len(block):
                        block = block[: len(block) // 2] or b"\xa5"
                except OSError:
                    if len(block) == 1:
                        return
                    block = block[: len(block) // 2]
        finally:
            os.close(fd)

    def close(self) -> None:
        """Unmount (lazily when busy) and remove the directory."""
        if self.mounted:
            result = subprocess.run(["umount", self.directory], capture_output=True, check=False)
            if result.returncode != 0:
                subprocess.run(["umount", "-l", self.directory], capture_output=True, check=False)
            self.mounted = False
        shutil.rmtree(self.directory, ignore_errors=True)
