"""Claiming ready MongoDB items: the step shared by a lease and a multi-item pop.

Batches are claimed, not locked: find candidate ids in order, then ``update_many``
them from ready to leased under a fresh ``claim`` id (see ``node``).
"""

from __future__ import annotations

import time
import uuid

import pymongo
from pymongo.collection import Collection

from sergeant.connector.mongo.support import LEASED, ORDER, READY, Document, where

__all__ = ["ITEM_FIELDS", "claim_ready"]

ITEM_FIELDS = {"_id": 1, "payload": 1, "deliveries": 1, "priority": 1, "seq": 1, "claim": 1}


def _new_claim() -> str:
    """A fresh claim id: 32 hex digits of a random UUID, read as an int it is the token."""
    return uuid.uuid4().hex


def _lease_update(claim: str, owner: str, deadline: float) -> Document:
    """The update turning a ready item into a leased one, counting a delivery."""
    fields = {"state": LEASED, "claim": claim, "owner": owner, "deadline": deadline}
    return {"$set": fields, "$inc": {"deliveries": 1}}


def claim_ready(
    tasks: Collection[Document], queue: str, count: int, owner: str, lease_seconds: float
) -> list[Document]:
    """Lease up to ``count`` ready items in order; their documents, counts incremented."""
    if count == 1:
        now = time.time()
        document = tasks.find_one_and_update(
            where(queue=queue, state=READY, eta={"$lte": now}),
            _lease_update(_new_claim(), owner, now + lease_seconds),
            ITEM_FIELDS,
            sort=ORDER,
            return_document=pymongo.ReturnDocument.AFTER,
        )
        return [] if document is None else [document]
    claimed: list[Document] = []
    while len(claimed) < count:
        now = time.time()
        ready = where(queue=queue, state=READY, eta={"$lte": now})
        candidates = list(tasks.find(ready, ITEM_FIELDS).sort(ORDER).limit(count - len(claimed)))
        if not candidates:
            break
        claim_id = _new_claim()
        result = tasks.update_many(
            {
                "_id": {"$in": [document["_id"] for document in candidates]},
                "seq": {"$in": [document["seq"] for document in candidates]},
                "state": READY,
            },
            _lease_update(claim_id, owner, now + lease_seconds),
        )
        if result.modified_count == len(candidates):
            # Same seqs means same stay in ready: what we read is what we got.
            for document in candidates:
                document["deliveries"] += 1
                document["claim"] = claim_id
            claimed.extend(candidates)
        elif result.modified_count:
            won = list(tasks.find(where(claim=claim_id, state=LEASED), ITEM_FIELDS))
            claimed.extend(
                sorted(won, key=lambda document: (document["priority"], document["seq"]))
            )
    return claimed
