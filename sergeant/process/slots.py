"""The supervisor's fleet positions: one ``Slot`` per worker process, and the
memory its process tree uses (``tree_rss``).
"""

from __future__ import annotations

import dataclasses
import subprocess

import psutil

from sergeant.killer.process import WATCHDOG_MODULE

__all__ = ["Slot", "tree_rss"]


@dataclasses.dataclass
class Slot:
    """One worker position in the fleet and the process currently filling it."""

    index: int
    status_path: str
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    respawn_at: float | None = 0.0
    failures: int = 0
    killed_for_memory: bool = False
    #: The process's first status was read (and its leases told to the lease keeper).
    status_seen: bool = False

    @property
    def running_path(self) -> str:
        """The file where the worker process shows the tasks it runs."""
        return f"{self.status_path}.running"


def tree_rss(pid: int) -> int:
    """Resident memory, in bytes, of ``pid`` and its descendants (watchdogs excluded)."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for process in processes:
        try:
            if process is not root and WATCHDOG_MODULE in process.cmdline():
                continue
            total += process.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return total
