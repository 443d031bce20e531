"""Operator views of the MongoDB broker: the live-worker registry and per-priority lengths.

Collection ``workers``: ``{_id: worker id, info, expires_at}`` with ``expires_at`` in
Unix seconds (the writer's clock). Expiry is checked on every read, no TTL index is
relied upon; each registration deletes expired documents, which only bounds the
collection's size.
"""

from __future__ import annotations

import time

from pymongo.database import Database

from sergeant.connector.mongo.support import PRIORITIES, READY, Document, count, where

__all__ = ["length_by_priority", "live", "register", "unregister"]


def register(database: Database[Document], worker_id: str, info: bytes, ttl_seconds: float) -> None:
    """Publish or refresh a worker's heartbeat, sweeping expired ones."""
    now = time.time()
    workers = database.workers
    workers.delete_many({"expires_at": {"$lte": now}})
    # $set rather than replace_one: nx-27017 upserts a replacement under a new ObjectId.
    update = {"$set": {"info": bytes(info), "expires_at": now + ttl_seconds}}
    workers.update_one({"_id": worker_id}, update, upsert=True)


def unregister(database: Database[Document], worker_id: str) -> bool:
    """Remove a worker's heartbeat; True if it was alive."""
    document = database.workers.find_one_and_delete({"_id": worker_id})
    return document is not None and float(document["expires_at"]) > time.time()


def live(database: Database[Document]) -> list[bytes]:
    """The info of every worker whose heartbeat has not expired."""
    found = database.workers.find({"expires_at": {"$gt": time.time()}})
    return [bytes(document["info"]) for document in found]


def length_by_priority(database: Database[Document], queue: str) -> tuple[int, int]:
    """Ready ``(HIGH, NORMAL)`` items of ``queue``, due delayed ones included."""
    now = time.time()
    high, normal = (
        count(
            database.tasks,
            where(queue=queue, state=READY, priority=PRIORITIES[name], eta={"$lte": now}),
        )
        for name in ("HIGH", "NORMAL")
    )
    return high, normal
