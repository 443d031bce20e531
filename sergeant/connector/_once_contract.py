"""Pushes made once per key: the step that lets every scheduler push every tick.

:meth:`OnceContract.push_once` stores one item unless its ``once_key`` was used on
that queue within ``keep_seconds``: the check, the mark and the push are one atomic
step (one Lua script on Redis, one SQLite transaction, the store's lock in memory),
so however many callers push the same key at the same moment, the item is stored
once, and the mark outlives the item (it is kept after the item is acknowledged).

MongoDB has no atomic step over two documents: there the push is a short protocol
whose every state can be finished by any later caller with the same key (see
``sergeant.connector.mongo.once``). A call interrupted by the death of its process
therefore leaves the key either used (the item stored) or *pending*; a call with
the same key made at least :data:`ONCE_SETTLE_SECONDS` later finishes a pending
push, and stores the item exactly once. Callers that must not lose an item (the
schedulers) call again after that delay.

On several independent nodes the key lives on the node it hashes to, and so does
its item.
"""

from __future__ import annotations

from sergeant.connector._queue_contract import Priority

__all__ = ["ONCE_SETTLE_SECONDS", "OnceContract"]

#: Seconds after which a push left pending by a dead caller is finished by the next
#: call with the same key.
ONCE_SETTLE_SECONDS = 3.0


class OnceContract:
    """The once-per-key push; see the module docstring."""

    def push_once(
        self,
        queue: str,
        item: bytes,
        once_key: str,
        keep_seconds: float,
        priority: Priority = "NORMAL",
    ) -> bool:
        """Push ``item`` (ready now, at the tail of ``priority``) unless ``once_key`` was
        used on ``queue`` within the last ``keep_seconds``.

        The key is marked used in the same atomic step as the push, and stays marked
        for ``keep_seconds`` whatever becomes of the item (acknowledged, dead-lettered,
        purged). A call that finishes a push left pending by a dead caller stores
        that caller's item (see the module docstring).

        Returns:
            True when this call stored the item; False when the key was used (or its
            push is in progress elsewhere).

        Raises:
            ValueError: ``keep_seconds`` is not above 0, or ``priority`` is unknown.
            BrokerFull: as for ``push_many``; nothing was stored or marked.
        """
        raise NotImplementedError(f"{type(self).__name__} does not support once pushes")


def check(keep_seconds: float, priority: str) -> None:
    """Raise ``ValueError`` for a ``keep_seconds`` not above 0 or an unknown priority."""
    if not keep_seconds > 0:
        raise ValueError(f"keep_seconds is {keep_seconds!r}; use seconds above 0")
    if priority not in ("NORMAL", "HIGH"):
        raise ValueError(f"priority is {priority!r}; use 'NORMAL' or 'HIGH'")
