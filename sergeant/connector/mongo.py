"""MongoDB connector: the persistent broker.

Collections of the ``database`` (default ``'sergeant'``):

* ``tasks``: one document per ready, delayed or leased item::

      {_id: ObjectId, queue, state, priority, seq, eta, payload, deliveries,
       claim, owner, deadline}

  ``state`` is ``'r'`` (ready, or delayed while ``eta`` is in the future), ``'l'``
  (leased until ``deadline``) or ``'m'`` (being moved to ``dead``). ``priority`` is
  0 for HIGH, 1 for NORMAL. ``seq`` orders items within a priority: pushes take
  increasing values from the ``tail`` counter, releases and reclaims take
  decreasing negative ones from the ``head`` counter, so they come first. Every
  entry into ready takes a fresh ``seq`` that is never reused, so ``(_id, seq)``
  names one stay in ready: a claim that matches every candidate it read knows it
  got them unchanged and needs no second read. Indexes: ``(queue, state,
  priority, seq)`` and ``claim``. (``_id`` is left out of compound indexes: the
  nx-27017 test server rejects later inserts when it is in one.)
* ``dead``: ``{_id (the item's), queue, seq, payload, reason, error, deliveries,
  dead_at, claim}``, oldest first by ``(dead_at, seq)``; indexes ``(queue,
  dead_at, seq)`` and ``claim``.
* ``counters``: ``{_id: 'tail' | 'head', value}``, one round trip per batch.
* ``keys``: ``{_id: key, value, expires_at}``; ``locks``: ``{_id: name, token,
  expires_at}``. Expiry is checked on every read; no TTL index is relied upon.

Batches are claimed, not locked: find candidate ids in order, then
``update_many`` them from ready to leased under a fresh ``claim`` id; a caller
that loses a race simply gets fewer, and loops while others make progress. Every
later step filters on ``state`` and the fencing token (``deliveries``), so each
transition happens once. Moves between collections (dead-lettering, requeueing)
mark their documents first, so a crash leaves them marked, never duplicated:
``reclaim_expired`` finishes dead-letter moves left behind by a dead caller.

Clock: MongoDB has no cheap server clock here, so lease deadlines, etas and
expiries are the clients' ``time.time()``; keep worker clocks in sync (NTP).
Pushes are not transactional: a crash in the middle of a large ``push_many``
can leave a prefix of it queued.
"""

from __future__ import annotations

import time
import typing
import uuid
from collections.abc import Sequence

import pymongo
from bson import ObjectId
from pymongo.database import Database

from sergeant.connector import _connector
from sergeant.connector._connector import DeadLetter, Delivery, Priority, ReclaimResult
from sergeant.connector.mongo_lock import Lock
from sergeant.connector.mongo_support import (
    Document,
    MongoClientHandle,
    group_by_token,
    insert_new,
    wrap_errors,
)

__all__ = ["Connector", "Lock"]

#: First and largest pause, in seconds, of a polling ``lease_many(block_seconds=...)``.
POLL_FIRST_SECONDS = 0.002
POLL_MAX_SECONDS = 0.05
#: Seconds a pop's claim lasts: if the popper dies in between, the items come back.
POP_CLAIM_SECONDS = 60.0
#: Seconds after which a dead-letter move left by a dead caller is finished by others.
MOVE_GRACE_SECONDS = 60.0

READY, LEASED, MOVING = "r", "l", "m"
POP_OWNER = "<pop>"
PRIORITIES: dict[str, int] = {"HIGH": 0, "NORMAL": 1}
ORDER = [("priority", pymongo.ASCENDING), ("seq", pymongo.ASCENDING)]
DEAD_ORDER = [("dead_at", pymongo.ASCENDING), ("seq", pymongo.ASCENDING)]
ITEM_FIELDS = {"_id": 1, "payload": 1, "deliveries": 1, "priority": 1, "seq": 1}


class Connector(_connector.Connector):
    """Queues, leases, dead letters, keys and locks in one MongoDB database.

    Args:
        nodes: the Sergeant 0.27 form, ``[{'host': str, 'port': int,
            'replica_set': str | None}, ...]``: the nodes of one deployment.
        url: a ``mongodb://`` (or ``mongodb+srv://``) URI, instead of ``nodes``.
        database: the database holding the collections.

    Raises:
        ConfigError: not exactly one of ``nodes`` and ``url``, or a bad node or URI.
    """

    name = "mongo"
    supports_blocking = False

    def __init__(
        self,
        nodes: list[dict[str, typing.Any]] | None = None,
        url: str | None = None,
        database: str = "sergeant",
    ) -> None:
        self._handle = MongoClientHandle(nodes, url, database)
        self.address = self._handle.address

    def _database(self) -> Database[Document]:
        return self._handle.database()

    def _allocate(self, counter: str, count: int) -> int:
        """Reserve ``count`` consecutive seqs at the tail or head; return the first."""
        step = count if counter == "tail" else -count
        document = self._database().counters.find_one_and_update(
            {"_id": counter},
            {"$inc": {"value": step}},
            upsert=True,
            return_document=pymongo.ReturnDocument.AFTER,
        )
        value = int(typing.cast(Document, document)["value"])
        return value - count + 1 if counter == "tail" else value

    # -- ready and delayed items --------------------------------------------------

    @wrap_errors
    def push_many(
        self,
        queue: str,
        payloads: Sequence[bytes],
        priority: Priority = "NORMAL",
        consumable_from: float = 0.0,
    ) -> int:
        """Append payloads to a queue; see ``Connector.push_many``."""
        if priority not in PRIORITIES:
            raise ValueError(f"priority is {priority!r}; use 'NORMAL' or 'HIGH'")
        if not payloads:
            return 0
        first = self._allocate("tail", len(payloads))
        level = PRIORITIES[priority]
        eta = float(consumable_from)
        documents = [
            {
                "queue": queue,
                "state": READY,
                "priority": level,
                "seq": first + offset,
                "eta": eta,
                "payload": bytes(payload),
                "deliveries": 0,
                "claim": "",
            }
            for offset, payload in enumerate(payloads)
        ]
        self._database().tasks.insert_many(documents, ordered=True)
        return len(documents)

    def _claim(self, queue: str, count: int, owner: str, lease_seconds: float) -> list[Document]:
        """Lease up to ``count`` ready items in order; their documents, counts incremented."""
        tasks = self._database().tasks
        claimed: list[Document] = []
        while len(claimed) < count:
            now = time.time()
            ready = {"queue": queue, "state": READY, "eta": {"$lte": now}}
            candidates = list(
                tasks.find(ready, ITEM_FIELDS).sort(ORDER).limit(count - len(claimed))
            )
            if not candidates:
                break
            claim = uuid.uuid4().hex
            result = tasks.update_many(
                {
                    "_id": {"$in": [document["_id"] for document in candidates]},
                    "seq": {"$in": [document["seq"] for document in candidates]},
                    "state": READY,
                },
                {
                    "$set": {
                        "state": LEASED,
                        "claim": claim,
                        "owner": owner,
                        "deadline": now + lease_seconds,
                    },
                    "$inc": {"deliveries": 1},
                },
            )
            if result.modified_count == len(candidates):
                # Same seqs means same stay in ready: what we read is what we got.
                for document in candidates:
                    document["deliveries"] += 1
                claimed.extend(candidates)
            elif result.modified_count:
                won = list(tasks.find({"claim": claim, "state": LEASED}, ITEM_FIELDS))
                claimed.extend(
                    sorted(won, key=lambda document: (document["priority"], document["seq"]))
                )
        return claimed

    @wrap_errors
    def pop_many(self, queue: str, count: int) -> list[bytes]:
        """Remove and return up to ``count`` ready items; see ``Connector.pop_many``."""
        if count <= 0:
            return []
        tasks = self._database().tasks
        if count == 1:
            document = tasks.find_one_and_delete(
                {"queue": queue, "state": READY, "eta": {"$lte": time.time()}}, sort=ORDER
            )
            return [] if document is None else [document["payload"]]
        claimed = self._claim(queue, count, POP_OWNER, POP_CLAIM_SECONDS)
        if claimed:
            ids = [document["_id"] for document in claimed]
            tasks.delete_many({"_id": {"$in": ids}, "state": LEASED})
        return [document["payload"] for document in claimed]

    @wrap_errors
    def length(self, queue: str, include_delayed: bool = False) -> int:
        """Number of ready (and, when asked, delayed) items; see ``Connector.length``."""
        query: Document = {"queue": queue, "state": READY}
        if not include_delayed:
            query["eta"] = {"$lte": time.time()}
        return self._database().tasks.count_documents(query)

    @wrap_errors
    def purge(self, queue: str) -> int:
        """Delete every ready and delayed item; see ``Connector.purge``."""
        return self._database().tasks.delete_many({"queue": queue, "state": READY}).deleted_count

    # -- leases -------------------------------------------------------------------

    @wrap_errors
    def lease_many(
        self,
        queue: str,
        count: int,
        owner: str,
        lease_seconds: float,
        block_seconds: float = 0.0,
    ) -> list[Delivery]:
        """Lease up to ``count`` ready items, polling up to ``block_seconds`` when empty.

        See ``Connector.lease_many``. Polls start at 2 ms and double up to 50 ms.
        """
        if count <= 0:
            return []
        give_up = time.monotonic() + block_seconds
        pause = POLL_FIRST_SECONDS
        while True:
            claimed = self._claim(queue, count, owner, lease_seconds)
            remaining = give_up - time.monotonic()
            if claimed or remaining <= 0:
                break
            time.sleep(min(pause, remaining))
            pause = min(pause * 2, POLL_MAX_SECONDS)
        return [
            Delivery(
                payload=document["payload"],
                item_id=str(document["_id"]),
                token=document["deliveries"],
                deliveries=document["deliveries"],
            )
            for document in claimed
        ]

    def _held(self, queue: str, ids: list[ObjectId], token: int) -> Document:
        return {"_id": {"$in": ids}, "queue": queue, "state": LEASED, "deliveries": token}

    @wrap_errors
    def ack_many(self, queue: str, deliveries: Sequence[Delivery]) -> int:
        """Delete leased items whose token is current; see ``Connector.ack_many``."""
        groups = group_by_token(deliveries)
        if not groups:
            return 0
        operations = [
            pymongo.DeleteMany(self._held(queue, ids, token)) for token, ids in groups.items()
        ]
        return self._database().tasks.bulk_write(operations, ordered=False).deleted_count

    @wrap_errors
    def release_many(self, queue: str, deliveries: Sequence[Delivery]) -> int:
        """Put leased items back at the head, in the given order; see ``Connector.release_many``."""
        items = [(ObjectId(d.item_id), d.token) for d in deliveries if ObjectId.is_valid(d.item_id)]
        if not items:
            return 0
        first = self._allocate("head", len(items))
        operations = [
            pymongo.UpdateOne(
                {"_id": item_id, "queue": queue, "state": LEASED, "deliveries": token},
                {"$set": {"state": READY, "seq": first + offset}, "$inc": {"deliveries": -1}},
            )
            for offset, (item_id, token) in enumerate(items)
        ]
        return self._database().tasks.bulk_write(operations, ordered=False).modified_count

    @wrap_errors
    def extend_leases(
        self, queue: str, deliveries: Sequence[Delivery], lease_seconds: float
    ) -> int:
        """Move the deadline of current leases; see ``Connector.extend_leases``."""
        groups = group_by_token(deliveries)
        if not groups:
            return 0
        update = {"$set": {"deadline": time.time() + lease_seconds}}
        operations = [
            pymongo.UpdateMany(self._held(queue, ids, token), update)
            for token, ids in groups.items()
        ]
        return self._database().tasks.bulk_write(operations, ordered=False).matched_count

    @wrap_errors
    def reclaim_expired(self, queue: str, max_deliveries: int) -> ReclaimResult:
        """Requeue or dead-letter items whose lease ran out; see ``Connector.reclaim_expired``."""
        tasks = self._database().tasks
        now = time.time()
        self._finish_moves({"queue": queue, "state": MOVING, "deadline": {"$lt": now}})
        expired_query = {"queue": queue, "state": LEASED, "deadline": {"$lt": now}}
        expired = list(tasks.find(expired_query, {"_id": 1, "deliveries": 1}).sort(ORDER))
        dying = [d["_id"] for d in expired if max_deliveries and d["deliveries"] >= max_deliveries]
        back = [d for d in expired if not max_deliveries or d["deliveries"] < max_deliveries]
        requeued = dead_lettered = 0
        if back:
            first = self._allocate("head", len(back))
            operations = [
                pymongo.UpdateOne(
                    {**expired_query, "_id": document["_id"], "deliveries": document["deliveries"]},
                    {"$set": {"state": READY, "seq": first + offset}},
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
            dead_lettered = self._start_moves(dying_query, "worker died", "", now)
        return ReclaimResult(requeued=requeued, dead_lettered=dead_lettered)

    @wrap_errors
    def leased_count(self, queue: str) -> int:
        """Number of leased items, expired ones included; see ``Connector.leased_count``."""
        return self._database().tasks.count_documents({"queue": queue, "state": LEASED})

    # -- dead letters -------------------------------------------------------------

    def _start_moves(self, query: Document, reason: str, error: str, now: float) -> int:
        """Mark matching leased items for the dead letters, then move them; how many."""
        claim = uuid.uuid4().hex
        marks = {
            "state": MOVING,
            "claim": claim,
            "reason": reason,
            "error": error,
            "dead_at": now,
            "deadline": now + MOVE_GRACE_SECONDS,
        }
        marked = self._database().tasks.update_many(query, {"$set": marks}).modified_count
        if marked:
            self._finish_moves({"claim": claim, "state": MOVING})
        return marked

    def _finish_moves(self, query: Document) -> None:
        """Copy marked items to ``dead`` (once, by ``_id``), then delete them from ``tasks``."""
        database = self._database()
        documents = list(database.tasks.find(query))
        if not documents:
            return
        fields = ("_id", "queue", "seq", "payload", "reason", "error", "deliveries", "dead_at")
        insert_new(database.dead, [{**{f: d[f] for f in fields}, "claim": ""} for d in documents])
        ids = [document["_id"] for document in documents]
        database.tasks.delete_many({"_id": {"$in": ids}, "state": MOVING})

    @wrap_errors
    def dead_letter_many(
        self, queue: str, deliveries: Sequence[Delivery], reason: str, error: str = ""
    ) -> int:
        """Move leased items to the dead letters; see ``Connector.dead_letter_many``."""
        moved = 0
        for token, ids in group_by_token(deliveries).items():
            moved += self._start_moves(self._held(queue, ids, token), reason, error, time.time())
        return moved

    @wrap_errors
    def dead_letters(self, queue: str, limit: int = 100) -> list[DeadLetter]:
        """Up to ``limit`` dead items, oldest first; see ``Connector.dead_letters``."""
        if limit <= 0:
            return []
        documents = self._database().dead.find({"queue": queue}).sort(DEAD_ORDER).limit(limit)
        return [
            DeadLetter(
                item_id=str(document["_id"]),
                payload=document["payload"],
                reason=document["reason"],
                error=document["error"],
                deliveries=document["deliveries"],
                dead_at=document["dead_at"],
            )
            for document in documents
        ]

    @wrap_errors
    def requeue_dead(self, queue: str, limit: int = 0) -> int:
        """Move dead items back to the tail of NORMAL; see ``Connector.requeue_dead``."""
        database = self._database()
        unclaimed = {"queue": queue, "claim": ""}
        candidates = list(
            database.dead.find(unclaimed, {"_id": 1}).sort(DEAD_ORDER).limit(max(limit, 0))
        )
        if not candidates:
            return 0
        claim = uuid.uuid4().hex
        ids = [document["_id"] for document in candidates]
        database.dead.update_many({**unclaimed, "_id": {"$in": ids}}, {"$set": {"claim": claim}})
        claimed = list(database.dead.find({"claim": claim}).sort(DEAD_ORDER))
        if not claimed:
            return 0
        first = self._allocate("tail", len(claimed))
        fresh = [
            {
                "_id": document["_id"],
                "queue": queue,
                "state": READY,
                "priority": PRIORITIES["NORMAL"],
                "seq": first + offset,
                "eta": 0.0,
                "payload": document["payload"],
                "deliveries": 0,
                "claim": "",
            }
            for offset, document in enumerate(claimed)
        ]
        # An _id still in tasks is a dead-letter move in flight: leave that one dead.
        clashes = insert_new(database.tasks, fresh)
        moved = [doc["_id"] for index, doc in enumerate(fresh) if index not in clashes]
        kept = [doc["_id"] for index, doc in enumerate(fresh) if index in clashes]
        database.dead.delete_many({"_id": {"$in": moved}, "claim": claim})
        if kept:
            database.dead.update_many({"_id": {"$in": kept}}, {"$set": {"claim": ""}})
        return len(moved)

    @wrap_errors
    def purge_dead(self, queue: str) -> int:
        """Delete every dead item of a queue; see ``Connector.purge_dead``."""
        return self._database().dead.delete_many({"queue": queue}).deleted_count

    @wrap_errors
    def dead_count(self, queue: str) -> int:
        """Number of dead items of a queue; see ``Connector.dead_count``."""
        return self._database().dead.count_documents({"queue": queue})

    # -- keys and locks -----------------------------------------------------------

    @wrap_errors
    def key_set(self, key: str, value: bytes, ttl_seconds: float | None = None) -> None:
        """Store ``value`` under ``key``; see ``Connector.key_set``."""
        expires_at = None if ttl_seconds is None else time.time() + ttl_seconds
        # $set rather than replace_one: nx-27017 upserts a replacement under a new ObjectId.
        update = {"$set": {"value": bytes(value), "expires_at": expires_at}}
        self._database().keys.update_one({"_id": key}, update, upsert=True)

    @staticmethod
    def _live(document: Document | None) -> bool:
        if document is None:
            return False
        expires_at = document.get("expires_at")
        return expires_at is None or expires_at > time.time()

    @wrap_errors
    def key_get(self, key: str) -> bytes | None:
        """The value under ``key`` unless missing or expired; see ``Connector.key_get``."""
        document = self._database().keys.find_one({"_id": key})
        return bytes(document["value"]) if document is not None and self._live(document) else None

    @wrap_errors
    def key_delete(self, key: str) -> bool:
        """Delete ``key``; True if it existed and had not expired."""
        return self._live(self._database().keys.find_one_and_delete({"_id": key}))

    def lock(self, name: str) -> Lock:
        """A lock object for ``name`` (not yet acquired); see ``Lock``."""
        return Lock(self._database, self.address, name)

    # -- lifecycle ----------------------------------------------------------------

    @wrap_errors
    def ping(self) -> None:
        """Check the server answers; raise ``BrokerUnavailable`` naming its address if not."""
        self._database().command("ping")

    def close(self) -> None:
        """Close the client of this process, if one was opened."""
        self._handle.close()
