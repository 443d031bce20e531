"""The connector contract, part one: ready and delayed items (push, pop, count, purge).

``sergeant.connector.base.Connector`` combines this with the lease and the
remaining parts; the vocabulary (ready, delayed, priority, order) is in its module
docstring.
"""

from __future__ import annotations

import abc
import contextlib
import typing

from sergeant.connector._polling import WAIT_POLL_FIRST_SECONDS, WAIT_POLL_MAX_SECONDS, poll

__all__ = ["Priority", "QueueContract"]

Priority = typing.Literal["NORMAL", "HIGH"]


class QueueContract(abc.ABC):
    """Putting items into a queue and taking them out without a lease."""

    @abc.abstractmethod
    def push_many(
        self,
        queue: str,
        payloads: typing.Sequence[bytes],
        priority: Priority = "NORMAL",
        consumable_from: float = 0.0,
    ) -> int:
        """Append payloads to a queue, atomically per call on a single node.

        Args:
            queue: the queue name.
            payloads: items in the order they must be handed out.
            priority: ``'HIGH'`` items are handed out before ``'NORMAL'`` ones.
            consumable_from: Unix seconds before which the items must not be handed
                out; 0 (or any time in the past) means ready now.

        Returns:
            The number of items pushed (``len(payloads)``).

        Raises:
            BrokerFull: the broker is out of memory or disk; nothing of the refused
                part was stored. A full Redis or SQLite broker still hands out,
                settles and dead-letters what it holds, so workers drain it.
        """

    def push_unique(
        self,
        queue: str,
        items: typing.Sequence[bytes],
        unique_keys: typing.Sequence[str | None],
        task_ids: typing.Sequence[str],
        priority: Priority = "NORMAL",
        consumable_from: float = 0.0,
    ) -> list[str]:
        """Push items that hold a key while they live in the queue, in one atomic step.

        An item whose key is held (by an item of ``queue`` that is ready, delayed or
        leased) is not stored; the others are appended in order, as by
        :meth:`push_many`. A key is held from the push that stores its item until
        that item leaves the queue for good: acknowledged, popped, dead-lettered (by
        any path) or purged. A release, a reclaim or a charge that requeues keeps it.
        A later item of the same call with the key of an earlier one is not stored.
        An item whose key is None is always stored and holds nothing. On several
        independent nodes a keyed item goes to the node its key hashes to, so the
        check and the store are one step on one node.

        Args:
            queue, priority, consumable_from: as for :meth:`push_many`.
            items: the payloads, in push order.
            unique_keys: one key (or None) per item.
            task_ids: one opaque id per item, handed back to later pushes of its key.

        Returns:
            Per item, the id of the item now holding its key: its own when it was
            stored (always, for a None key).

        Raises:
            ValueError: the three sequences differ in length.
            BrokerFull: as for :meth:`push_many`.
        """
        raise NotImplementedError(f"{type(self).__name__} does not support unique pushes")

    def push(
        self,
        queue: str,
        payload: bytes,
        priority: Priority = "NORMAL",
        consumable_from: float = 0.0,
    ) -> int:
        """Push one item; see :meth:`push_many`."""
        return self.push_many(queue, [payload], priority, consumable_from)

    @abc.abstractmethod
    def pop_many(self, queue: str, count: int) -> list[bytes]:
        """Remove and return up to ``count`` ready items (at-most-once; nothing is leased).

        HIGH before NORMAL, FIFO within a priority; due delayed items are made ready
        first, in the same atomic step. Never blocks. Returns ``[]`` when empty.
        """

    def start_pop(self, queue: str, count: int) -> typing.Callable[[], list[bytes]]:
        """Begin :meth:`pop_many` (not blocking); the function returned finishes it.

        For prefetching at-most-once, as :meth:`start_ack_and_lease`. By default the
        items are popped at once.
        """
        items = self.pop_many(queue, count)
        return lambda: items

    def sending_together(self) -> contextlib.AbstractContextManager[None]:
        """A block whose :meth:`start_pop` and :meth:`start_ack_and_lease` requests go
        out together at its end (one socket write on Redis with one server); their
        replies are read as ever. By default nothing changes."""
        return contextlib.nullcontext()

    def wait_for_items(self, queue: str, block_seconds: float) -> bool:
        """Wait until ``queue`` has a ready item, at most ``block_seconds``.

        For idle at-most-once consumers, which pop without leasing. Nothing is
        taken: a True answer may be stale by the time the caller pops. This default
        polls :meth:`length`, every :data:`WAIT_POLL_FIRST_SECONDS` at first, doubling
        up to :data:`WAIT_POLL_MAX_SECONDS`; brokers that can wait server-side
        override it.

        Returns:
            True when an item is (or just was) ready; False when the time ran out.
        """
        ready = poll(
            lambda: True if self.length(queue) > 0 else None,
            block_seconds,
            WAIT_POLL_FIRST_SECONDS,
            WAIT_POLL_MAX_SECONDS,
        )
        return ready is not None

    def pop(self, queue: str) -> bytes | None:
        """Remove and return one ready item, or None; see :meth:`pop_many`."""
        items = self.pop_many(queue, 1)
        return items[0] if items else None

    @abc.abstractmethod
    def length(self, queue: str, include_delayed: bool = False) -> int:
        """Number of ready items, plus not-yet-due delayed items when asked.

        Leased and dead items are not counted (see :meth:`leased_count`,
        :meth:`dead_count`).
        """

    @abc.abstractmethod
    def length_by_priority(self, queue: str) -> dict[Priority, int]:
        """Ready items per priority (due delayed ones included), as :meth:`length` counts.

        Returns:
            ``{'HIGH': n, 'NORMAL': m}``, both keys always present; the two add up to
            ``length(queue)`` when nothing changes in between.
        """

    @abc.abstractmethod
    def purge(self, queue: str) -> int:
        """Delete every ready and delayed item of a queue; leased and dead items stay.

        Returns:
            The number of items deleted.
        """
