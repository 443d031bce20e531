"""Stopping a running task that ``Worker.cancel`` cancelled.

``WorkerCancelled`` is raised in it: through ``SIGALRM`` when it runs in the main
thread (the handler raises it, and a signal interrupts ``time.sleep`` and most
blocking calls), as an asynchronous exception in any other thread (seen at the
thread's next bytecode). The watchdog process is armed at the same time: a task
still running ``Timeouts.grace_period`` later (stuck in C code holding the GIL, say)
has its worker killed, and its supervisor starts a new one.
"""

from __future__ import annotations

import threading
import typing

from sergeant.config import WorkerConfig
from sergeant.control import WorkerCancelled
from sergeant.executor.watchdog import make_process_killer
from sergeant.killer.thread import raise_in_thread

if typing.TYPE_CHECKING:
    from sergeant.killer.process import ProcessKiller

__all__ = ["Cancels"]


class Cancels:
    """The running tasks cancel requests can reach, and the watchdog they arm.

    Args:
        config: the worker's configuration (its grace period, its broker for the
            watchdog's kill note).
    """

    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        #: Ids of the tasks WorkerCancelled was sent to and that have not ended yet.
        self.cancelling: set[str] = set()
        self._threads: dict[str, int] = {}  # task id -> thread ident, for threads
        self._watchdog: ProcessKiller | None = None
        self._lock = threading.Lock()

    def running_in(self, task_id: str, thread_ident: int) -> None:
        """``task_id`` runs in that thread (the threaded executor tells each task)."""
        self._threads[task_id] = thread_ident

    def ended(self, task_id: str) -> None:
        """``task_id`` ended: forget it, and disarm its watchdog deadline if cancelled."""
        self._threads.pop(task_id, None)
        if task_id in self.cancelling:
            with self._lock:
                self.cancelling.discard(task_id)
                if self._watchdog is not None:
                    self._watchdog.disarm(_slot(task_id))

    def request(self, task_id: str) -> bool:
        """Note that ``task_id`` is being cancelled and arm the watchdog for it; False
        when that was done already."""
        with self._lock:
            if task_id in self.cancelling:
                return False
            self.cancelling.add(task_id)
            self._arm(task_id)
        return True

    def cancel_in_thread(self, task_id: str) -> bool:
        """Cancel ``task_id`` running in a thread other than the main one (the threaded
        executor's); False when it does not run here."""
        ident = self._threads.get(task_id)
        if ident is None or not self.request(task_id):
            return False
        return raise_in_thread(ident, WorkerCancelled)

    def raise_if_cancelled(self, task_id: str | None) -> None:
        """In the ``SIGALRM`` handler: raise WorkerCancelled if ``task_id`` was cancelled."""
        if task_id is not None and task_id in self.cancelling:
            raise WorkerCancelled(f"task {task_id} was cancelled")

    def _arm(self, task_id: str) -> None:
        if self._watchdog is None:
            self._watchdog = make_process_killer(self.config)
            self._watchdog.start()
        self._watchdog.arm(_slot(task_id), self.config.timeouts.grace_period, task_id)

    def close(self) -> None:
        """Stop the watchdog this started, if any."""
        if self._watchdog is not None:
            self._watchdog.close()
            self._watchdog = None


def _slot(task_id: str) -> str:
    return f"cancel-{task_id}"
