"""Grouped items of one MongoDB deployment (see ``_group_contract``).

A grouped item is an ordinary ``tasks`` document with a ``group_key``; every other
operation sees it as it sees any item. A lease or pop first asks whether the queue
has a ready grouped document (one ``find_one`` on the partial index ``(queue,
group_key, state, priority, seq)`` of grouped documents, which ungrouped ones never
enter); without one it claims as before.

**The ring.** Its members are the ungrouped ready items (``''``, first) and the
group keys with ready documents in ascending order, each found with one
``find_one`` past the last member visited. A visit claims the member's head
(priority, then ``seq``) with one ``update_one`` that matches it still ready under
the ``seq`` it was read with; a walk stops at ``count`` items or after a whole turn
that took nothing. ``group_rings`` (``{_id: queue, last}``) keeps the member the
last lease took from, where the next lease goes on; racing callers may visit a
member twice in a round, never break a limit.

**Concurrency: the slot is on the leased document.** A claim under a concurrency
``C`` sets ``slot`` to a number below ``C`` that no leased document of the group
holds, in the same single-document update that leases it. The unique partial index
``(queue, group_key, slot)`` over documents with an integer ``slot`` refuses a
second holder (``DuplicateKeyError``: the visit reads the held slots again), so
at most ``C`` documents of a group hold a slot, whatever the number of workers.
Every update that takes a document out of the leased state also ``$unset``\\ s the
slot (release, reclaim, charge, the dead-letter mark), and an ack deletes the
document: the slot comes back in that same atomic step. There is no counter to
drift, so a crash at any point leaks nothing: a dead worker's documents keep their
slots until reclaim or ``release_owned`` moves them, which frees them.

**Rate: tickets.** Under ``rate_tasks`` ``R`` per ``rate_seconds`` ``W`` a group
has up to ``R`` ticket documents (``group_tickets``, ``_id`` from queue, group and
number ``k < R``) holding ``until``. A lease first takes a ticket whose ``until``
has passed (a conditional ``update_one``; a missing ticket is inserted under its
deterministic ``_id``, which a racing insert cannot duplicate) and sets it to
``now + W``: a ticket serves one lease per window, so no window sees more than
``R`` leases of the group. A ticket taken for a claim that then fails is put back;
a crash between the two steps wastes that ticket until its window ends, and the
limit only errs on the strict side.
"""

from __future__ import annotations

import time
import typing
import uuid
from collections.abc import Sequence

import pymongo
import pymongo.errors
from pymongo.collection import Collection
from pymongo.database import Database

from sergeant.connector import _group_keys
from sergeant.connector._group_keys import HeldLimits
from sergeant.connector._queue_contract import Priority
from sergeant.connector._records import GroupCount, GroupLimits
from sergeant.connector.mongo.claim import ITEM_FIELDS, claim_ready
from sergeant.connector.mongo.support import (
    LEASED,
    ORDER,
    PRIORITIES,
    READY,
    Document,
    allocate,
    new_item,
    where,
    wrap_errors,
)

__all__ = ["NO_LIMITS", "Groups", "claim", "has_grouped"]

#: The limits of a queue nobody set limits for.
NO_LIMITS = _group_keys.NO_LIMITS
# The ring member of the ungrouped items (group keys are never empty).
_UNGROUPED = ""
# Visits of one member that lose a race before the walk moves on.
_ATTEMPTS = 3
# Group keys are non-empty strings, and ``$gt`` matches strings only: the partial
# index's filter, spelled the same in every query that must use that index.
_GROUPED = {"group_key": {"$gt": ""}}


def has_grouped(tasks: Collection[Document], queue: str) -> bool:
    """Whether ``queue`` has a ready or delayed grouped document (one index probe)."""
    query = {**where(queue=queue, state=READY), **_GROUPED}
    return tasks.find_one(query, {"_id": 1}) is not None


def claim(
    database: Database[Document],
    queue: str,
    count: int,
    owner: str,
    lease_seconds: float,
    limits: GroupLimits,
    grouped: bool | None = None,
) -> list[Document]:
    """Lease up to ``count`` ready items: in order for a queue without grouped ones,
    else round-robin over its groups within ``limits``; their documents.

    ``grouped`` is what the caller's own :func:`has_grouped` said, if it asked.
    """
    tasks = database.tasks
    if grouped is None:
        grouped = has_grouped(tasks, queue)
    if not grouped:
        return claim_ready(tasks, queue, count, owner, lease_seconds)
    return _Ring(database, queue, owner, lease_seconds, limits).walk(count)


def _lease_update(owner: str, deadline: float, slot: int | None) -> tuple[str, Document]:
    claim_id = uuid.uuid4().hex
    fields: Document = {"state": LEASED, "claim": claim_id, "owner": owner, "deadline": deadline}
    if slot is not None:
        fields["slot"] = slot
    return claim_id, {"$set": fields, "$inc": {"deliveries": 1}}


class _Ring:
    """One walk of a queue's ring."""

    def __init__(
        self,
        database: Database[Document],
        queue: str,
        owner: str,
        lease_seconds: float,
        limits: GroupLimits,
    ) -> None:
        self.database = database
        self.tasks = database.tasks
        self.queue = queue
        self.owner = owner
        self.lease_seconds = lease_seconds
        self.limits = limits
        self.now = time.time()
        self.rated = limits.rate_tasks > 0 and limits.rate_seconds > 0
        self.blocked: set[str] = set()  # full for the rest of this walk
        self.ungrouped_empty = False

    def walk(self, count: int) -> list[Document]:
        rings = self.database.group_rings
        found = rings.find_one(where(_id=self.queue))
        position = None if found is None else str(found["last"])
        claimed: list[Document] = []

        def take_from(member: str) -> bool:
            document = self._visit(member)
            if document is not None:
                claimed.append(document)
            return document is not None

        last_taken = _group_keys.walk_ring(position, count, self._next, take_from)
        if last_taken is not None:
            rings.update_one(where(_id=self.queue), {"$set": {"last": last_taken}}, upsert=True)
        return claimed

    def _ready(self, **conditions: typing.Any) -> Document:
        return where(queue=self.queue, state=READY, eta={"$lte": self.now}, **conditions)

    def _next(self, position: str | None) -> str | None:
        """The member after ``position``, wrapping; None if the ring is empty."""
        if position is not None:
            after = self._group_after(position)
            if after is not None:
                return after
        if not self.ungrouped_empty:
            return _UNGROUPED
        return self._group_after(_UNGROUPED)

    def _group_after(self, position: str) -> str | None:
        query = {**self._ready(), "group_key": {"$gt": position}}
        found = self.tasks.find_one(query, {"group_key": 1}, sort=[("group_key", 1)])
        return None if found is None else str(found["group_key"])

    def _visit(self, member: str) -> Document | None:
        if member == _UNGROUPED:
            for _ in range(_ATTEMPTS):
                head = self.tasks.find_one(
                    self._ready(group_key={"$exists": False}), ITEM_FIELDS, sort=ORDER
                )
                if head is None:
                    self.ungrouped_empty = True
                    return None
                if self._take(head, None):
                    return head
            return None
        if member in self.blocked:
            return None
        return self._visit_group(member)

    def _visit_group(self, group: str) -> Document | None:
        slot = self._free_slot(group)
        if slot is False:
            self.blocked.add(group)
            return None
        ticket = self._take_ticket(group) if self.rated else None
        if self.rated and ticket is None:
            self.blocked.add(group)
            return None
        for _ in range(_ATTEMPTS):
            head = self.tasks.find_one(self._ready(group_key=group), ITEM_FIELDS, sort=ORDER)
            if head is None:
                break
            try:
                if self._take(head, slot):
                    return head
            except pymongo.errors.DuplicateKeyError:  # a racing lease took that slot
                slot = self._free_slot(group)
                if slot is False:
                    self.blocked.add(group)
                    break
        if ticket is not None:
            self._give_back(ticket)
        return None

    def _take(self, head: Document, slot: int | None) -> bool:
        """Lease ``head`` if it is still ready as read; fills in its claim and count."""
        claim_id, update = _lease_update(self.owner, self.now + self.lease_seconds, slot)
        query = where(_id=head["_id"], seq=head["seq"], state=READY)
        if self.tasks.update_one(query, update).modified_count != 1:
            return False
        head["claim"] = claim_id
        head["deliveries"] += 1
        return True

    def _free_slot(self, group: str) -> int | typing.Literal[False] | None:
        """A slot no leased document of ``group`` holds; None without a concurrency
        bound; False when the group is full."""
        concurrency = self.limits.concurrency
        if concurrency <= 0:
            return None
        leased = self.tasks.find(
            where(queue=self.queue, state=LEASED, group_key=group), {"slot": 1}
        )
        held = [document.get("slot") for document in leased]
        if len(held) >= concurrency:
            return False
        return min(set(range(concurrency)) - set(held))

    def _take_ticket(self, group: str) -> tuple[str, float, float] | None:
        """``(_id, until before, until now)`` of a ticket taken for a lease now, or None."""
        tickets = self.database.group_tickets
        rate, until = self.limits.rate_tasks, self.now + self.limits.rate_seconds
        mine = where(queue=self.queue, group=group, k={"$lt": rate})
        for _ in range(_ATTEMPTS):
            free = tickets.find_one({**mine, "until": {"$lte": self.now}})
            if free is not None:
                query = where(_id=free["_id"], until=free["until"])
                if tickets.update_one(query, {"$set": {"until": until}}).modified_count:
                    return str(free["_id"]), float(free["until"]), until
                continue
            number = len(list(tickets.find(mine, {"_id": 1})))
            if number >= rate:
                return None
            ticket_id = f"{self.queue}\x00{group}\x00{number}"
            document = {"_id": ticket_id, "queue": self.queue, "group": group, "k": number}
            try:
                tickets.insert_one({**document, "until": until})
            except pymongo.errors.DuplicateKeyError:
                continue
            return ticket_id, 0.0, until
        return None

    def _give_back(self, ticket: tuple[str, float, float]) -> None:
        ticket_id, before, until = ticket
        self.database.group_tickets.update_one(
            where(_id=ticket_id, until=until), {"$set": {"until": before}}
        )


class Groups(HeldLimits):
    """``push_grouped``, ``set_group_limits`` and ``group_counts`` of a MongoDB node;
    its lease and pop call :func:`claim` with ``_limits_of(queue)``."""

    address: str
    _group_limits: dict[str, GroupLimits]

    def _database(self) -> Database[Document]:
        raise NotImplementedError

    @wrap_errors
    def push_grouped(
        self,
        queue: str,
        items: Sequence[bytes],
        group_keys: Sequence[str],
        priority: Priority = "NORMAL",
        consumable_from: float = 0.0,
    ) -> None:
        """Append grouped items; see ``Connector.push_grouped`` (one ``insert_many``)."""
        if priority not in PRIORITIES:
            raise ValueError(f"priority is {priority!r}; use 'NORMAL' or 'HIGH'")
        _group_keys.check(items, group_keys)
        if not items:
            return
        first = allocate(self._database(), "tail", len(items))
        level, eta = PRIORITIES[priority], float(consumable_from)
        documents = [
            {**new_item(queue, level, first + offset, eta, bytes(payload)), "group_key": key}
            for offset, (payload, key) in enumerate(zip(items, group_keys, strict=True))
        ]
        self._database().tasks.insert_many(documents, ordered=True)

    @wrap_errors
    def group_counts(self, queue: str, limit: int = 20) -> list[GroupCount]:
        """Groups with ready or leased items, largest first; see ``Connector.group_counts``."""
        if limit <= 0:
            return []
        now = time.time()
        ready = {"$and": [{"$eq": ["$state", READY]}, {"$lte": ["$eta", now]}]}
        pipeline: list[Document] = [
            {"$match": {**where(queue=queue), **_GROUPED}},
            {
                "$group": {
                    "_id": "$group_key",
                    "ready": {"$sum": {"$cond": [ready, 1, 0]}},
                    "leased": {"$sum": {"$cond": [{"$eq": ["$state", LEASED]}, 1, 0]}},
                }
            },
        ]
        counts = [
            GroupCount(str(row["_id"]), int(row["ready"]), int(row["leased"]))
            for row in self._database().tasks.aggregate(pipeline)
            if row["ready"] or row["leased"]
        ]
        counts.sort(key=lambda c: (-(c.ready + c.leased), c.group))
        return counts[:limit]
