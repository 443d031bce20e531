"""The MongoDB once push (see ``sergeant.connector._once_contract``).

MongoDB gives no atomic step over two documents here, and the mark of a key must
outlive its item (which its acknowledgement deletes), so the mark and the item are
two documents, and the push is a protocol in which every state is finished by any
later caller (a scheduler pushes each tick again :data:`ONCE_SETTLE_SECONDS` after
it is due):

1. insert the mark ``once`` ``{_id: [queue, key], state: 'n', payload, priority,
   at, expires_at}``. A duplicate ``_id`` means the key is used or being pushed: the
   caller stops there, unless the mark is pending (state ``'n'`` or ``'p'``) for
   more than :data:`PENDING_SECONDS`, in which case it finishes it from step 2 or 4;
2. insert the item into ``tasks`` in the held state ``'h'`` (never claimed,
   counted or purged) under a fresh random ``_id``;
3. move the mark from ``'n'`` to ``'p'``, recording that ``_id`` in ``q``, in one
   conditional update. Only one caller's update matches; a loser deletes its own
   held document (the winner's is the one pushed);
4. move the document named by ``q`` from held to ready (with a fresh tail
   ``seq``, as a push would), conditional on it still being held;
5. mark the key ``'d'`` (done).

Why exactly once, whatever process dies at whatever instruction: only the
document named in ``q`` is ever made ready; ``q`` is written once (step 3 matches
state ``'n'`` only); step 4 matches only a held document, so it succeeds at most
once, and after it the document is gone from the held state for good (leased,
acknowledged, deleted). Why never lost: a death before step 3 leaves the mark
``'n'`` (finished from step 2 by the next caller after ``PENDING_SECONDS``), a death
after it leaves ``'p'`` (finished from step 4). A caller slower than
``PENDING_SECONDS`` racing a finisher is harmless: the conditions above decide.

Left behind: a caller killed between steps 2 and 3 leaves a held document nothing
names; held documents carry ``once_until`` (the mark's expiry) and are deleted,
as expired marks are, by a sweep each process runs at most every
:data:`SWEEP_SECONDS` per queue. Clock: ``at`` and ``expires_at`` are the clients' clocks.
"""

from __future__ import annotations

import json
import time
import typing

import pymongo.errors
from bson import ObjectId
from pymongo.database import Database

from sergeant.connector import _once_contract
from sergeant.connector._once_contract import ONCE_SETTLE_SECONDS
from sergeant.connector.base import Priority
from sergeant.connector.mongo.flows import HELD
from sergeant.connector.mongo.support import PRIORITIES, READY, Document, allocate, wrap_errors

__all__ = ["PENDING_SECONDS", "Once"]

#: A mark pending longer than this is finished by the next caller of its key.
PENDING_SECONDS = ONCE_SETTLE_SECONDS - 1.0
#: Seconds between one process's sweeps of expired marks and orphan held documents.
SWEEP_SECONDS = 60.0
NEW, PUSHED, DONE = "n", "p", "d"
_ATTEMPTS = 5
#: When this process last swept, per queue (0: never).
_last_sweep: dict[str, float] = {}


class Once:
    """``push_once`` of one MongoDB deployment (a mixin of its ``Node``)."""

    address: str

    def _database(self) -> Database[Document]:
        raise NotImplementedError

    @wrap_errors
    def push_once(
        self,
        queue: str,
        item: bytes,
        once_key: str,
        keep_seconds: float,
        priority: Priority = "NORMAL",
    ) -> bool:
        """See :meth:`sergeant.connector.Connector.push_once` and the module docstring."""
        _once_contract.check(keep_seconds, priority)
        database = self._database()
        _sweep(database, queue)
        mark_id = json.dumps([queue, once_key])
        for _ in range(_ATTEMPTS):
            now = time.time()
            mark: Document = {
                "_id": mark_id,
                "queue": queue,
                "state": NEW,
                "payload": bytes(item),
                "priority": PRIORITIES[priority],
                "at": now,
                "expires_at": now + keep_seconds,
            }
            try:
                database.once.insert_one(mark)
            except pymongo.errors.DuplicateKeyError:
                found = database.once.find_one({"_id": mark_id})
                if found is None:
                    continue  # expired and deleted meanwhile: mark it again
                if found["expires_at"] <= now:
                    database.once.delete_one({"_id": mark_id, "expires_at": found["expires_at"]})
                    continue
                if found["state"] == DONE or now - found["at"] < PENDING_SECONDS:
                    return False
                return _finish(database, found)
            return _finish(database, mark)
        return False


def _finish(database: Database[Document], mark: Document) -> bool:
    """Steps 2 to 5 (from 4 when the mark is ``'p'``); whether this call pushed it."""
    mark_id, held_id = mark["_id"], mark.get("q")
    if mark["state"] == NEW:
        held_id = ObjectId()
        database.tasks.insert_one(
            {
                "_id": held_id,
                "queue": mark["queue"],
                "state": HELD,
                "priority": mark["priority"],
                "seq": 0,
                "eta": 0.0,
                "payload": mark["payload"],
                "deliveries": 0,
                "claim": "",
                "once_until": mark["expires_at"],
            }
        )
        moved = database.once.update_one(
            {"_id": mark_id, "state": NEW, "at": mark["at"]},
            {"$set": {"state": PUSHED, "q": held_id, "at": time.time()}},
        )
        if moved.modified_count != 1:
            database.tasks.delete_one({"_id": held_id, "state": HELD})
            return False  # another caller moved it on, and finishes it
    seq = allocate(database, "tail", 1)
    flipped = database.tasks.update_one(
        {"_id": held_id, "state": HELD},
        {"$set": {"state": READY, "seq": seq}, "$unset": {"once_until": ""}},
    )
    database.once.update_one({"_id": mark_id, "state": PUSHED}, {"$set": {"state": DONE}})
    return bool(flipped.modified_count == 1)


def _sweep(database: Database[Document], queue: str) -> None:
    """Delete expired marks and the queue's held documents nothing names, at most
    every ``SWEEP_SECONDS`` per process and queue (the ``expires_at`` index of
    ``once``, and the ``(queue, state, ...)`` index of ``tasks``)."""
    now = time.time()
    if now - _last_sweep.get(queue, 0.0) < SWEEP_SECONDS:
        return
    _last_sweep[queue] = now
    database.once.delete_many({"expires_at": {"$lte": now}})
    orphans: dict[str, typing.Any] = {"queue": queue, "state": HELD, "once_until": {"$lte": now}}
    database.tasks.delete_many(orphans)
