"""Plain keys in MongoDB's ``keys`` collection: ``{_id: key, value, expires_at}``.

Expiry is checked on every read; no TTL index is relied upon.
"""

from __future__ import annotations

import time

from pymongo.database import Database

from sergeant.connector.mongo.support import Document

__all__ = ["delete", "get", "put"]


def _live(document: Document | None) -> bool:
    if document is None:
        return False
    expires_at = document.get("expires_at")
    return expires_at is None or expires_at > time.time()


def put(database: Database[Document], key: str, value: bytes, ttl_seconds: float | None) -> None:
    """Store ``value`` under ``key`` (overwriting), expiring after ``ttl_seconds``."""
    expires_at = None if ttl_seconds is None else time.time() + ttl_seconds
    # $set rather than replace_one: nx-27017 upserts a replacement under a new ObjectId.
    update = {"$set": {"value": bytes(value), "expires_at": expires_at}}
    database.keys.update_one({"_id": key}, update, upsert=True)


def get(database: Database[Document], key: str) -> bytes | None:
    """The value under ``key``, or None if missing or expired."""
    document = database.keys.find_one({"_id": key})
    return bytes(document["value"]) if document is not None and _live(document) else None


def delete(database: Database[Document], key: str) -> bool:
    """Delete ``key``; True if it existed and had not expired."""
    return _live(database.keys.find_one_and_delete({"_id": key}))
