"""Records a connector hands back: leased items, dead letters, reclaim results, group
counts; and the group limits it is given."""

from __future__ import annotations

import dataclasses
import typing

__all__ = ["DeadLetter", "Delivery", "GroupCount", "GroupLimits", "ReclaimResult"]


class Delivery(typing.NamedTuple):
    """One leased item, as handed out by :meth:`Connector.lease_many`.

    A named tuple, not a dataclass: a worker builds one per task on the hot path.

    Attributes:
        payload: the bytes that were pushed.
        item_id: the broker's id for the item; stable across redeliveries.
        token: the fencing token of this lease; no other lease of this item has it.
        deliveries: how many times the item has been handed out, this time included.
        node: for connectors spread over independent nodes, which node holds it.
        slot: for connectors that lease in batches (Redis), the item's place (from 1)
            in the batch of ``token``; 0 elsewhere.
    """

    payload: bytes
    item_id: str
    token: int
    deliveries: int
    node: int = 0
    slot: int = 0


@dataclasses.dataclass(frozen=True, slots=True)
class DeadLetter:
    """An item that was given up on.

    Attributes:
        item_id: the broker's id for the item.
        payload: the bytes that were pushed.
        reason: why it was given up on, such as ``'worker died'`` or ``'max retries'``.
        error: the last error text seen for it (may be empty).
        deliveries: how many times it had been handed out.
        dead_at: Unix seconds when it was dead-lettered.
        node: for connectors spread over independent nodes, which node holds it.
    """

    item_id: str
    payload: bytes
    reason: str
    error: str
    deliveries: int
    dead_at: float
    node: int = 0


@dataclasses.dataclass(frozen=True, slots=True)
class ReclaimResult:
    """What :meth:`Connector.reclaim_expired` did.

    Attributes:
        requeued: items whose lease had expired and that went back to ready.
        dead_lettered: items whose lease had expired and that had used up their
            delivery budget, so went to the dead letters with reason ``'worker died'``.
    """

    requeued: int = 0
    dead_lettered: int = 0


class Waiting(typing.NamedTuple):
    """A ready or delayed item as ``Connector.waiting`` lists it, to be removed by
    ``Connector.remove_waiting``.

    Attributes:
        ref: how the engine names the item (opaque).
        payload: the item's payload.
        node: the node holding it, on a connector spread over several.
    """

    ref: bytes
    payload: bytes
    node: int = 0


@dataclasses.dataclass(frozen=True, slots=True)
class GroupLimits:
    """The bounds every group of a queue obeys when this connector leases from it.

    Attributes:
        concurrency: the most items of one group leased at once (0 = no bound).
        rate_tasks: the most leases of one group per ``rate_seconds`` (0 = no bound).
        rate_seconds: the window of ``rate_tasks``, in seconds.
    """

    concurrency: int = 0
    rate_tasks: int = 0
    rate_seconds: float = 0.0


@dataclasses.dataclass(frozen=True, slots=True)
class GroupCount:
    """One group of a queue, as ``Connector.group_counts`` lists it.

    Attributes:
        group: the group key the items were pushed with.
        ready: its ready (not delayed) items.
        leased: its items leased now.
    """

    group: str
    ready: int
    leased: int
