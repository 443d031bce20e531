"""A supervised worker process ends with its supervisor.

The supervisor passes its pid to each worker (``--supervisor-pid``). When that
process is gone, the worker stops as on SIGTERM: it takes no new task, gives back
what it pulled but did not start, and its running task gets the grace period.
No supervisor is left to kill it after that, so it kills itself (and its
children) if it is still alive ``grace_period + EXIT_MARGIN_SECONDS`` later.

Two ways of noticing, because neither is enough alone: a watcher thread compares
``os.getppid()`` with the supervisor's pid every :data:`WATCH_SECONDS`, and on Linux
the kernel also sends :data:`DEATH_SIGNAL` the moment the parent dies
(``PR_SET_PDEATHSIG``), which only wakes the watcher at once. Either way the watcher
then sends this process one SIGTERM, the slave's graceful stop. The death signal is
not SIGTERM itself: the kernel sends it again as each thread of a multi-threaded
parent exits, and a second SIGTERM means "kill now". A parent that died before the
kernel was asked is caught by :func:`watch` itself.

A worker started by hand (no ``--supervisor-pid``) watches nothing: it keeps
running when the shell that started it exits.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import threading
import time
import typing

from sergeant.killer.process import kill_tree

__all__ = [
    "DEATH_SIGNAL",
    "EXIT_MARGIN_SECONDS",
    "WATCH_SECONDS",
    "ParentWatch",
    "request_death_signal",
    "watch",
]

logger = logging.getLogger(__name__)

#: Seconds between two looks at the parent's pid.
WATCH_SECONDS = 1.0
#: Seconds past the grace period before an orphaned worker kills itself (as the
#: supervisor's own shutdown margin).
EXIT_MARGIN_SECONDS = 1.0
#: ``prctl`` option: the signal this process gets when its parent dies (Linux).
_PR_SET_PDEATHSIG = 1
#: The kernel's parent-death signal: it wakes the watcher (see the module docstring).
DEATH_SIGNAL = signal.SIGHUP
#: Seconds the watcher keeps looking after a death signal for the parent to change
#: (the signal can come as the parent's first thread exits, before the reparenting).
_WOKEN_LOOK_SECONDS = 2.0


def request_death_signal(signum: int) -> bool:
    """Ask the kernel to send ``signum`` to this process when its parent dies.

    Returns:
        True if the kernel will (Linux); False elsewhere or if ``prctl`` failed.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


class ParentWatch(threading.Thread):
    """A daemon thread that stops this worker once ``parent_pid`` is no longer its parent.

    Args:
        parent_pid: the supervisor's pid.
        grace_seconds: the running task's grace period, read when the parent is gone.
        stopping: True once this worker is already stopping (it was signalled).
    """

    def __init__(
        self,
        parent_pid: int,
        grace_seconds: typing.Callable[[], float],
        stopping: typing.Callable[[], bool],
    ) -> None:
        super().__init__(name="sergeant-parent-watch", daemon=True)
        self.parent_pid = parent_pid
        self.grace_seconds = grace_seconds
        self.stopping = stopping
        self.woken = threading.Event()
        self._announced = False

    def wake(self) -> None:
        """The kernel's death signal came: look now (safe in a signal handler)."""
        self.woken.set()

    def run(self) -> None:
        look_until = 0.0
        while True:
            if self.woken.wait(0.01 if time.monotonic() < look_until else WATCH_SECONDS):
                self.woken.clear()
                look_until = time.monotonic() + _WOKEN_LOOK_SECONDS
            if os.getppid() != self.parent_pid:
                break
        self._announce()
        if not self.stopping():
            os.kill(os.getpid(), signal.SIGTERM)  # the slave's graceful stop, once
        time.sleep(self.grace_seconds() + EXIT_MARGIN_SECONDS)
        self._kill_self()

    def _announce(self) -> None:
        if self._announced:
            return
        self._announced = True
        logger.warning(
            "the supervisor (pid %d) is gone: this worker stops; a running task gets its "
            "%.1fs grace period",
            self.parent_pid,
            self.grace_seconds(),
            extra={"event": "supervisor_gone", "supervisor_pid": self.parent_pid},
        )

    def _kill_self(self) -> None:
        """Still alive past the grace period, with no supervisor to kill it: end now."""
        logger.error(
            "still running %.1fs after the supervisor died: killing this worker and its "
            "children; the tasks it holds run again once their leases expire",
            self.grace_seconds() + EXIT_MARGIN_SECONDS,
            extra={"event": "orphan_killed"},
        )
        kill_tree(os.getpid())
        os.kill(os.getpid(), signal.SIGKILL)


def watch(
    parent_pid: int,
    grace_seconds: typing.Callable[[], float],
    stopping: typing.Callable[[], bool],
) -> bool:
    """Stop this worker when ``parent_pid`` is gone (see the module docstring).

    Call it once, in the main thread (it installs the :data:`DEATH_SIGNAL` handler).

    Returns:
        False if the parent is gone already (the caller should end now); True
        once the watch is on.
    """
    watcher = ParentWatch(parent_pid, grace_seconds, stopping)
    signal.signal(DEATH_SIGNAL, lambda signum, frame: watcher.wake())
    request_death_signal(DEATH_SIGNAL)
    # Checked after asking the kernel: a parent that died before never triggers it.
    if os.getppid() != parent_pid:
        logger.warning(
            "the supervisor (pid %d) is gone already: this worker does not start",
            parent_pid,
            extra={"event": "supervisor_gone", "supervisor_pid": parent_pid},
        )
        return False
    watcher.start()
    return True
