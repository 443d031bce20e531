"""Killers: what ends a task, a thread or a worker process that will not end by itself.

* ``sergeant.killer.process``: a watchdog *process* (``python -m sergeant.killer.process``)
  that SIGKILLs the worker's process tree when a hard deadline passes. It is the
  only killer that works when a task holds the GIL in C code and blocks signals.
* ``sergeant.killer.thread``: raises an exception inside another thread of this
  interpreter (``PyThreadState_SetAsyncExc``), on a per-thread monotonic deadline.
* ``ShutdownRequested``: how a graceful stop (SIGTERM) ends the work loop between tasks.
"""

from __future__ import annotations

from sergeant.control import WorkerRespawn

__all__ = ["ShutdownRequested"]


class ShutdownRequested(WorkerRespawn):
    """Raised between tasks when the worker process was asked to stop (SIGTERM/SIGINT).

    It is a ``WorkerRespawn`` so that ``Worker.work_loop`` ends normally (the
    consumer gives unstarted tasks back, ``finalize`` runs); the slave turns it
    into ``ExitCode.TERMINATED``.
    """
