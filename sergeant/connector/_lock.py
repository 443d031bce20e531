"""The lock contract: a named lock with an owner token and a TTL (see ``Connector.lock``)."""

from __future__ import annotations

import abc
import time
import types

__all__ = ["DEFAULT_LOCK_CHECK_INTERVAL_SECONDS", "DEFAULT_LOCK_TTL_SECONDS", "Lock"]

#: Seconds between two attempts of :meth:`Lock.acquire` when no interval is given.
DEFAULT_LOCK_CHECK_INTERVAL_SECONDS = 1.0
#: Seconds a lock is held before it expires when no TTL is given.
DEFAULT_LOCK_TTL_SECONDS = 60


class Lock(abc.ABC):
    """A named lock held by one owner at a time, expiring after a TTL.

    Each acquire writes a fresh owner token; release and TTL changes act only if
    the stored token is still this object's (compare-and-act), so a holder whose
    lock expired cannot release someone else's. An expired lock is free to take.
    Usable as a context manager (``with worker.lock('x'):`` acquires, waiting
    forever, and releases).
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.token: str | None = None

    def acquire(
        self,
        timeout: float | None = None,
        check_interval: float = DEFAULT_LOCK_CHECK_INTERVAL_SECONDS,
        ttl: int = DEFAULT_LOCK_TTL_SECONDS,
    ) -> bool:
        """Take the lock, waiting for it if another owner holds it.

        Args:
            timeout: seconds to wait at most; ``None`` waits forever.
            check_interval: seconds between two attempts.
            ttl: seconds after which the lock frees itself if not released.

        Returns:
            True when this object now holds the lock, False when ``timeout`` ran out.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self._try_acquire(ttl):
                return True
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                time.sleep(min(check_interval, remaining))
            else:
                time.sleep(check_interval)

    @abc.abstractmethod
    def _try_acquire(self, ttl: int) -> bool:
        """One atomic attempt: take the lock if free or expired; set ``self.token``."""

    @abc.abstractmethod
    def release(self) -> bool:
        """Free the lock if this object holds it.

        Returns:
            True if it was held by this object and is now free; False otherwise.
        """

    @abc.abstractmethod
    def is_locked(self) -> bool:
        """Whether anyone (this object or another) holds the lock now."""

    @abc.abstractmethod
    def set_ttl(self, ttl: int) -> bool:
        """Make the lock expire ``ttl`` seconds from now, if this object holds it.

        ``set_ttl(0)`` (or less) frees the lock at once: ``get_ttl()`` is then None,
        as in 0.27.

        Returns:
            True if the TTL was changed; False if this object does not hold the lock.
        """

    @abc.abstractmethod
    def get_ttl(self) -> int | None:
        """Seconds (rounded up) until the lock expires; None when nobody holds it."""

    def __enter__(self) -> Lock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        self.release()
