"""The MongoDB lock: one ``locks`` document per name, changed only by its token holder."""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable

import pymongo.errors
from pymongo.collection import Collection
from pymongo.database import Database

from sergeant.connector import base
from sergeant.connector.mongo.support import Document, wrap_errors

__all__ = [
    "Lock",
]


class Lock(base.Lock):
    """A lock stored as ``{_id: name, token, expires_at}`` in the ``locks`` collection.

    Acquire inserts the document (a duplicate key means it is held) or takes over
    one whose ``expires_at`` has passed; release and TTL changes filter on this
    object's token and on the lock being unexpired. ``expires_at`` is the client's
    ``time.time()``, checked on every read rather than by a TTL index.

    Args:
        database: returns the connector's database (opened lazily, per process).
        address: the server address, for error messages.
        name: the lock name.
    """

    def __init__(self, database: Callable[[], Database[Document]], address: str, name: str) -> None:
        super().__init__(name)
        self._database = database
        self.address = address

    def _locks(self) -> Collection[Document]:
        return self._database().locks

    def _mine(self) -> Document:
        return {"_id": self.name, "token": self.token, "expires_at": {"$gt": time.time()}}

    @wrap_errors
    def _try_acquire(self, ttl: int) -> bool:
        token = uuid.uuid4().hex
        now = time.time()
        fields = {"token": token, "expires_at": now + ttl}
        try:
            self._locks().insert_one({"_id": self.name, **fields})
        except pymongo.errors.DuplicateKeyError:
            # Filter on _id alone plus a range: nx-27017 mismatches $or filters with upsert.
            expired = {"_id": self.name, "expires_at": {"$lte": now}}
            if self._locks().find_one_and_update(expired, {"$set": fields}) is None:
                return False
        self.token = token
        return True

    @wrap_errors
    def release(self) -> bool:
        """Free the lock if this object holds it; see ``sergeant.connector.Lock.release``."""
        if self.token is None:
            return False
        released = self._locks().delete_one(self._mine()).deleted_count == 1
        self.token = None
        return released

    @wrap_errors
    def is_locked(self) -> bool:
        """Whether anyone (this object or another) holds the lock now."""
        held = {"_id": self.name, "expires_at": {"$gt": time.time()}}
        return self._locks().count_documents(held) > 0

    @wrap_errors
    def set_ttl(self, ttl: int) -> bool:
        """Make the lock expire ``ttl`` seconds from now, if this object holds it."""
        if self.token is None:
            return False
        update = {"$set": {"expires_at": time.time() + ttl}}
        return self._locks().update_one(self._mine(), update).matched_count == 1

    @wrap_errors
    def get_ttl(self) -> int | None:
        """Seconds (rounded up) until the lock expires; None when nobody holds it."""
        document = self._locks().find_one({"_id": self.name})
        if document is None:
            return None
        remaining = float(document["expires_at"]) - time.time()
        return math.ceil(remaining) if remaining > 0 else None
