"""The thread killer: raise an exception inside another thread on a monotonic deadline.

It uses CPython's ``PyThreadState_SetAsyncExc``: the exception is raised in the
target thread the next time it runs Python bytecode. It therefore cannot stop a
thread blocked in a system call or running C code that holds the GIL (such as a
catastrophic regular expression): those need the process watchdog
(``sergeant.killer.process``), which kills the whole worker.
"""

from __future__ import annotations

import ctypes
import logging
import platform
import threading
import time

__all__ = ["ThreadKiller", "clear_async_exception", "raise_in_thread"]

logger = logging.getLogger(__name__)

_CPYTHON = platform.python_implementation() == "CPython"
if _CPYTHON:
    _set_async_exc = ctypes.pythonapi.PyThreadState_SetAsyncExc
    _set_async_exc.argtypes = (ctypes.c_ulong, ctypes.py_object)
    _set_async_exc.restype = ctypes.c_int


def raise_in_thread(thread_id: int, exception: type[BaseException]) -> bool:
    """Raise ``exception`` in the thread whose ``threading.get_ident()`` is ``thread_id``.

    Returns:
        True if exactly one thread will raise it; False if the thread is gone,
        if more than one thread was hit (undone, logged at CRITICAL), or off CPython.
    """
    if not _CPYTHON:
        logger.warning(
            "cannot raise in another thread on %s; only the process watchdog applies",
            platform.python_implementation(),
            extra={"event": "thread_kill_unsupported"},
        )
        return False
    count: int = _set_async_exc(thread_id, exception)
    if count == 0:
        return False  # the thread already ended
    if count > 1:
        _set_async_exc(thread_id, ctypes.py_object())  # NULL undoes it everywhere
        logger.critical(
            "raising %s hit %d threads for id %d; undone",
            exception.__name__,
            count,
            thread_id,
            extra={"event": "thread_kill_failed"},
        )
        return False
    return True


def clear_async_exception(thread_id: int) -> None:
    """Cancel an exception sent by ``raise_in_thread`` that the thread has not raised yet."""
    if _CPYTHON:
        _set_async_exc(thread_id, ctypes.py_object())


class ThreadKiller:
    """A daemon thread that raises ``exception`` in threads whose deadline passed.

    Each thread arms its own deadline before a task and disarms it after; a
    deadline fires at most once. ``disarm`` also cancels an exception that was
    sent but not raised yet, so it never lands after the task has ended.
    Constructing it has no side effect; ``start()`` starts the thread.
    """

    def __init__(self, exception: type[BaseException]) -> None:
        self.exception = exception
        self._deadlines: dict[int, float] = {}
        self._fired: set[int] = set()
        self._condition = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the deadline thread."""
        self._thread = threading.Thread(
            target=self._run, name="sergeant-thread-killer", daemon=True
        )
        self._thread.start()

    def arm(self, thread_id: int, seconds: float) -> None:
        """Raise in ``thread_id`` unless it calls ``disarm`` within ``seconds``."""
        with self._condition:
            self._fired.discard(thread_id)
            self._deadlines[thread_id] = time.monotonic() + seconds
            self._condition.notify()

    def disarm(self, thread_id: int) -> bool:
        """Cancel the deadline of ``thread_id``; returns whether it had fired."""
        with self._condition:
            self._deadlines.pop(thread_id, None)
            fired = thread_id in self._fired
            if fired:
                self._fired.discard(thread_id)
                clear_async_exception(thread_id)
            return fired

    def close(self) -> None:
        """Stop the deadline thread."""
        with self._condition:
            self._closed = True
            self._condition.notify()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        with self._condition:
            while not self._closed:
                now = time.monotonic()
                for thread_id, deadline in list(self._deadlines.items()):
                    if deadline <= now:
                        del self._deadlines[thread_id]
                        if raise_in_thread(thread_id, self.exception):
                            self._fired.add(thread_id)
                wait = min(self._deadlines.values(), default=now + 3600) - now
                self._condition.wait(timeout=max(wait, 0.001))

    def __enter__(self) -> ThreadKiller:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
