"""Waiting items of one MongoDB deployment, listed and removed (see ``_waiting_contract``).

An item's ``ref`` is its ``tasks`` ``_id`` as 12 bytes. Listing reads the ready
documents per priority, HIGH first: the due ones in ``seq`` order (as a claim takes
them), then the delayed ones by ``eta`` (as they fall due). Held workflow steps
(``'h'``), leased items and moves to ``dead`` are in other states, so never listed.
Removal is one ``delete_many`` filtered on the ids *and* the ready state: a document
a claim took meanwhile no longer matches and stays leased, and a deleted document
takes its unique key with it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import pymongo
from bson import ObjectId
from bson.errors import InvalidId
from pymongo.database import Database

from sergeant.connector.base import Waiting
from sergeant.connector.mongo.support import (
    ORDER,
    PRIORITIES,
    READY,
    Document,
    where,
    wrap_errors,
)

__all__ = ["WaitingItems"]

FIELDS = {"_id": 1, "payload": 1}
DELAYED_ORDER = [("eta", pymongo.ASCENDING), ("seq", pymongo.ASCENDING)]


class WaitingItems:
    """``waiting`` and ``remove_waiting`` on ``_database``'s ``tasks``."""

    address: str

    def _database(self) -> Database[Document]:
        raise NotImplementedError

    @wrap_errors
    def waiting(self, queue: str, limit: int = 100_000) -> list[Waiting]:
        """See :meth:`sergeant.connector.Connector.waiting`."""
        tasks, now = self._database().tasks, time.time()
        found: list[Waiting] = []
        for level in (PRIORITIES["HIGH"], PRIORITIES["NORMAL"]):
            for eta, order in (({"$lte": now}, ORDER), ({"$gt": now}, DELAYED_ORDER)):
                left = limit - len(found)
                if left <= 0:
                    return found
                query = where(queue=queue, state=READY, priority=level, eta=eta)
                documents = tasks.find(query, FIELDS).sort(order).limit(left)
                found += [Waiting(d["_id"].binary, d["payload"]) for d in documents]
        return found

    @wrap_errors
    def remove_waiting(self, queue: str, items: Sequence[Waiting]) -> int:
        """See :meth:`sergeant.connector.Connector.remove_waiting`."""
        ids = []
        for item in items:
            try:
                ids.append(ObjectId(item.ref))
            except (InvalidId, TypeError):
                continue  # not a ref this connector made
        if not ids:
            return 0
        query = where(_id={"$in": ids}, queue=queue, state=READY)
        return self._database().tasks.delete_many(query).deleted_count
