"""Start permits in MongoDB (see ``_permits_contract``): one document per key in the
``starts`` collection, ``{_id: key, log: [[at, count], ...], v}``.

A grant reads the document, computes the new log in the client (``_permits.grant``,
on the caller's ``time.time()``) and writes it with ``update_one`` filtered on the
version it read (``v``), which it bumps: a single-document atomic compare-and-set.
A writer that lost the race reads again and recomputes; the first grant of a key is
an ``insert_one`` of ``_id`` key, which only one writer wins. A read that grants
nothing writes nothing. With several deployments the key's document lives on one,
chosen by name as keys and locks are.
"""

from __future__ import annotations

import random
import time

import pymongo.errors
from pymongo.database import Database

from sergeant.connector import _permits
from sergeant.connector.mongo.support import Document, translate_error

__all__ = ["MAX_ATTEMPTS", "take_starts"]

#: Compare-and-set attempts before a call gives up granting (it then grants 0 and
#: says to ask again in :data:`CONTENDED_RETRY_SECONDS`).
MAX_ATTEMPTS = 50
CONTENDED_RETRY_SECONDS = 0.01


def take_starts(
    database: Database[Document],
    address: str,
    key: str,
    tasks: int,
    window_seconds: float,
    want: int,
) -> tuple[int, float]:
    """See :meth:`sergeant.connector.Connector.take_starts`; ``address`` names the
    deployment in errors."""
    _permits.check(tasks, window_seconds, want)
    try:
        return _take(database, key, tasks, window_seconds, want)
    except pymongo.errors.PyMongoError as exc:
        raise translate_error(exc, address) from exc


def _take(
    database: Database[Document], key: str, tasks: int, window: float, want: int
) -> tuple[int, float]:
    starts = database.starts
    for attempt in range(MAX_ATTEMPTS):
        document = starts.find_one({"_id": key})
        now = time.time()
        log = [(float(at), int(count)) for at, count in document["log"]] if document else []
        found = _permits.grant(log, now, tasks, window, want)
        if not found.granted:
            return 0, found.retry_seconds
        entries = [[at, count] for at, count in found.log]
        if document is None:
            try:
                starts.insert_one({"_id": key, "log": entries, "v": 1})
            except pymongo.errors.DuplicateKeyError:
                continue
            return found.granted, found.retry_seconds
        version = document["v"]
        done = starts.update_one(
            {"_id": key, "v": {"$eq": version}}, {"$set": {"log": entries, "v": version + 1}}
        )
        if done.matched_count:
            return found.granted, found.retry_seconds
        time.sleep(random.uniform(0, 0.001 * min(attempt + 1, 10)))  # spread the racers
    return 0, CONTENDED_RETRY_SECONDS
