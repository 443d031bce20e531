"""Leased MongoDB items going back to ready: released, reclaimed after expiry, or charged.

Each takes a fresh seq from the ``head`` counter, so the items come first in their
priority; the ones past their delivery bound are moved to the dead letters instead
(``dead``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import pymongo
from bson import ObjectId
from pymongo.database import Database

from sergeant.connector._records import Delivery, ReclaimResult
from sergeant.connector.mongo.dead import finish_moves, start_moves
from sergeant.connector.mongo.support import (
    LEASED,
    MOVING,
    ORDER,
    READY,
    Document,
    allocate,
    claim_of,
    held_query,
    where,
)

__all__ = ["charge", "reclaim_expired", "release", "release_owned"]

# Leaving the leased state frees the group slot in the same update (see ``groups``).
_FREE_SLOT = {"slot": ""}


def release(database: Database[Document], queue: str, deliveries: Sequence[Delivery]) -> int:
    """Put held leased items back at the head, in the given order, uncounted."""
    items = [(ObjectId(d.item_id), d.token) for d in deliveries if ObjectId.is_valid(d.item_id)]
    if not items:
        return 0
    first = allocate(database, "head", len(items))
    operations = [
        pymongo.UpdateOne(
            {"_id": item_id, "queue": queue, "state": LEASED, "claim": claim_of(token)},
            {
                "$set": {"state": READY, "seq": first + offset},
                "$inc": {"deliveries": -1},
                "$unset": _FREE_SLOT,
            },
        )
        for offset, (item_id, token) in enumerate(items)
    ]
    return database.tasks.bulk_write(operations, ordered=False).modified_count


def reclaim_expired(database: Database[Document], queue: str, max_deliveries: int) -> ReclaimResult:
    """Requeue, or dead-letter past the bound, items whose lease ran out."""
    tasks = database.tasks
    now = time.time()
    finish_moves(database, where(queue=queue, state=MOVING, deadline={"$lt": now}))
    expired_query = where(queue=queue, state=LEASED, deadline={"$lt": now})
    expired = list(tasks.find(expired_query, {"_id": 1, "deliveries": 1}).sort(ORDER))
    dying = [d["_id"] for d in expired if max_deliveries and d["deliveries"] >= max_deliveries]
    back = [d for d in expired if not max_deliveries or d["deliveries"] < max_deliveries]
    requeued = dead_lettered = 0
    if back:
        first = allocate(database, "head", len(back))
        operations = [
            pymongo.UpdateOne(
                {**expired_query, "_id": document["_id"], "deliveries": document["deliveries"]},
                {"$set": {"state": READY, "seq": first + offset}, "$unset": _FREE_SLOT},
            )
            for offset, document in enumerate(back)
        ]
        requeued = tasks.bulk_write(operations, ordered=False).modified_count
    if dying:
        dying_query = {
            **expired_query,
            "_id": {"$in": dying},
            "deliveries": {"$gte": max_deliveries},
        }
        dead_lettered = start_moves(database, dying_query, "worker died", "", now)
    return ReclaimResult(requeued=requeued, dead_lettered=dead_lettered)


def charge(
    database: Database[Document],
    queue: str,
    deliveries: Sequence[Delivery],
    max_deliveries: int,
    reason: str,
    error: str,
) -> ReclaimResult:
    """Requeue, or dead-letter past the bound, held items whose run ended their worker
    (the delivery was counted at lease)."""
    held = [(ObjectId(d.item_id), d.token) for d in deliveries if ObjectId.is_valid(d.item_id)]
    queries = [held_query(queue, [item_id], token) for item_id, token in held]
    found = [database.tasks.find_one(query, {"deliveries": 1}) for query in queries]
    pairs = [(query, doc) for query, doc in zip(queries, found, strict=True) if doc]
    spent = [q for q, doc in pairs if 0 < max_deliveries <= doc["deliveries"]]
    back = [q for q, doc in pairs if not 0 < max_deliveries <= doc["deliveries"]]
    requeued = dead_lettered = 0
    if back:
        first = allocate(database, "head", len(back))
        operations = [
            pymongo.UpdateOne(
                query, {"$set": {"state": READY, "seq": first + offset}, "$unset": _FREE_SLOT}
            )
            for offset, query in enumerate(back)
        ]
        requeued = database.tasks.bulk_write(operations, ordered=False).modified_count
    for query in spent:
        dead_lettered += start_moves(database, query, reason, error, time.time())
    return ReclaimResult(requeued=requeued, dead_lettered=dead_lettered)


def release_owned(database: Database[Document], queue: str, owner: str) -> int:
    """Release every lease of ``owner``, in lease order."""
    query = where(queue=queue, state=LEASED, owner=owner)
    owned = list(database.tasks.find(query, {"_id": 1, "claim": 1}).sort(ORDER))
    return release(
        database, queue, [Delivery(b"", str(d["_id"]), int(d["claim"], 16), 0) for d in owned]
    )
