"""Moves between the MongoDB ``tasks`` and ``dead`` collections, each safe against crashes.

A move marks its documents first (``state`` ``'m'`` in ``tasks``, or a ``claim`` in
``dead``), copies them keeping their ``_id``, then deletes the originals. A copy
whose ``_id`` already exists is skipped, so a move finished twice never
duplicates an item; ``finish_moves`` completes moves that a dead caller left.
"""

from __future__ import annotations

import uuid

from pymongo.database import Database

from sergeant.connector.mongo.support import (
    DEAD_ORDER,
    MOVING,
    PRIORITIES,
    Document,
    allocate,
    insert_new,
    new_item,
    where,
)

__all__ = [
    "finish_moves",
    "requeue",
    "start_moves",
]

#: Seconds after which a dead-letter move left by a dead caller is finished by others.
MOVE_GRACE_SECONDS = 60.0
DEAD_FIELDS = ("_id", "queue", "seq", "payload", "reason", "error", "deliveries", "dead_at")
# ... and a grouped item's group, which ``requeue`` gives back.
_GROUP_FIELDS = ("group_key",)


def start_moves(
    database: Database[Document], query: Document, reason: str, error: str, now: float
) -> int:
    """Mark the ``tasks`` matching ``query`` for the dead letters, then move them.

    Returns:
        How many were marked (and so will reach the dead letters exactly once).
    """
    claim = uuid.uuid4().hex
    marks: Document = {"state": MOVING, "claim": claim, "reason": reason, "error": error}
    marks |= {"dead_at": now, "deadline": now + MOVE_GRACE_SECONDS}
    # The mark ends the lease: it frees the group slot in the same update (see ``groups``).
    update = {"$set": marks, "$unset": {"slot": ""}}
    marked = database.tasks.update_many(query, update).modified_count
    if marked:
        finish_moves(database, where(claim=claim, state=MOVING))
    return marked


def finish_moves(database: Database[Document], query: Document) -> None:
    """Copy marked ``tasks`` matching ``query`` to ``dead`` (once by ``_id``), then delete them."""
    documents = list(database.tasks.find(query))
    if not documents:
        return
    copies = [
        {**{field: d[field] for field in DEAD_FIELDS + _GROUP_FIELDS if field in d}, "claim": ""}
        for d in documents
    ]
    insert_new(database.dead, copies)
    ids = [document["_id"] for document in documents]
    database.tasks.delete_many({"_id": {"$in": ids}, "state": MOVING})


def requeue(database: Database[Document], queue: str, limit: int) -> int:
    """Move up to ``limit`` (0 = all) dead items, oldest first, to the tail of NORMAL.

    Returns:
        How many were requeued; concurrent callers never requeue the same item.
    """
    unclaimed = where(queue=queue, claim="")
    oldest = database.dead.find(unclaimed, {"_id": 1}).sort(DEAD_ORDER).limit(max(limit, 0))
    ids = [document["_id"] for document in oldest]
    if not ids:
        return 0
    claim = uuid.uuid4().hex
    database.dead.update_many({**unclaimed, "_id": {"$in": ids}}, {"$set": {"claim": claim}})
    claimed = list(database.dead.find(where(claim=claim)).sort(DEAD_ORDER))
    if not claimed:
        return 0
    first, normal = allocate(database, "tail", len(claimed)), PRIORITIES["NORMAL"]
    fresh = [
        {
            "_id": document["_id"],
            **new_item(queue, normal, first + i, 0.0, document["payload"]),
            **{field: document[field] for field in _GROUP_FIELDS if field in document},
        }
        for i, document in enumerate(claimed)
    ]
    # An _id still in tasks is a dead-letter move in flight: leave that item dead.
    clashes = insert_new(database.tasks, fresh)
    moved = [doc["_id"] for index, doc in enumerate(fresh) if index not in clashes]
    kept = [doc["_id"] for index, doc in enumerate(fresh) if index in clashes]
    database.dead.delete_many({"_id": {"$in": moved}, "claim": claim})
    if kept:
        database.dead.update_many({"_id": {"$in": kept}}, {"$set": {"claim": ""}})
    return len(moved)
