"""Groups: items of one queue pushed under a group key (a tenant, a customer, a
host) and leased fairly, with per-group bounds.

A grouped item is an ordinary item of its queue in every other respect: ``length``,
``length_by_priority``, ``waiting``/``remove_waiting``, ``purge``, ``pop_many``
(at-most-once pops grouped items too, round-robin over the groups, with no limits),
leases, acks, releases, reclaims, charges, dead letters, ``release_owned`` and
``extend_owned`` all see it. A queue with no grouped item behaves and performs as
before: the lease step makes one cheap check at most.

**Order.** Within a group, HIGH before NORMAL and FIFO within a priority; delayed
items join their group when due.

**Fairness.** Leasing (``lease_many``, ``ack_and_lease`` and their async and
pipelined variants) visits the groups that have ready items in a ring, starting
where the previous lease of that queue (by any worker) stopped, and takes ONE item
per group per round, skipping a group whose leased count has reached
``GroupLimits.concurrency`` or whose leases in the last ``rate_seconds`` reached
``rate_tasks``. The ungrouped ready items are one more member of the ring (no
limits, taken in their usual order). Rounds repeat until ``count`` items are taken
or nothing is eligible. So a group with 100,000 ready items delays a group with 10
by at most one round per lease.

**Slots.** A group's slot is held from the lease until the item leaves the lease:
acknowledged, dead-lettered (by any path), charged and dead, released (back at the
head of its group), reclaimed after its lease expired (back at the head of its
group, or dead), or given back by ``release_owned``; always in the same atomic
step as that transition. A dead worker's slots come back when its leases are
reclaimed or released.

**Dead letters.** ``requeue_dead`` brings a grouped item back to the tail of its group
when the engine keeps the group in the dead letter (Redis and the memory engine do);
an engine that does not says so in its ``requeue_dead`` docstring.

**Limits.** They come from :meth:`GroupContract.set_group_limits` (a worker calls it
from ``WorkerConfig.group_concurrency`` and ``group_rate_limit`` before its first
lease); a lease made before any limits were set treats them as 0 (no bound).
Enforcement is in the broker's lease step, so no number of workers can exceed
them; all workers of a queue are expected to share one config. The rate counts
leases as starts: a released or reclaimed item leased again counts again.
"""

from __future__ import annotations

import typing

from sergeant.connector._queue_contract import Priority
from sergeant.connector._records import GroupCount, GroupLimits

__all__ = ["GroupContract"]


class GroupContract:
    """Grouped items: pushed under a key, leased round-robin within per-group bounds."""

    def push_grouped(
        self,
        queue: str,
        items: typing.Sequence[bytes],
        group_keys: typing.Sequence[str],
        priority: Priority = "NORMAL",
        consumable_from: float = 0.0,
    ) -> None:
        """Append items to ``queue``, each in the group its key names, in one atomic
        step on one node (on several independent nodes a group lives on the node its
        key hashes to, so the items of one call may go to several nodes).

        Args:
            queue, priority, consumable_from: as for ``push_many``.
            items: the payloads, in push order (the order within each group).
            group_keys: one group key per item (a non-empty string).

        Raises:
            ValueError: ``group_keys`` does not have one key per item.
            BrokerFull: as for ``push_many``.
        """
        raise NotImplementedError(f"{type(self).__name__} does not push grouped items")

    def set_group_limits(self, queue: str, limits: GroupLimits) -> None:
        """Make this connector's leases of ``queue`` obey ``limits`` from now on.

        The limits are held by this connector object (not stored in the broker) and
        passed to every lease step of ``queue``; ``GroupLimits()`` removes them.
        """
        raise NotImplementedError(f"{type(self).__name__} does not limit groups")

    def group_counts(self, queue: str, limit: int = 20) -> list[GroupCount]:
        """Up to ``limit`` groups of ``queue`` that have ready or leased items, the
        largest (ready + leased) first; ties in no set order. Delayed items are not
        counted. A scan, for an operator's occasional call."""
        raise NotImplementedError(f"{type(self).__name__} does not count groups")
