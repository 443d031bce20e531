"""Held workflow steps on one MongoDB deployment (see ``sergeant.connector._flow_contract``).

A node ``(queue, flow_id, node)`` is keyed by ``key``, the JSON of that triple:

* ``flow_nodes``: ``{_id: key, queue, expires_at[, inserted]}``, made by the first
  hold or advance and moved ``ttl_seconds`` ahead by every later one. ``inserted``
  is the ``token`` of the held document, written once it exists: it outlives that
  document, so a node whose item was pushed and acknowledged still reads released
  and is never held again.
* ``flow_values``: ``{_id: [key fields, member], node: key, member, value}``, inserted
  once per member: a duplicate key means recorded already, and the first value stays.
* the held item is a ``tasks`` document with ``state`` ``'h'`` (which no claim, count
  or purge selects) and ``_id`` derived from ``key``, so holding again is a duplicate
  key. It counts its members in ``members`` (``{str(member): 1}``) and ``count``, each
  added once by a single update conditional on the member being absent.

The push is one single-document update: ``'h'`` to ready (taking a fresh tail
``seq``, as ``push_many`` would) on the condition that the document is ``armed`` and
``count >= needed``; an empty payload deletes the document instead. It flips at most
once and every hold or advance tries it again, so a crash between counting a member
and pushing is repaired by the next advance or the member's rerun. ``armed`` is set
only after ``inserted`` is written, so a held document can only be pushed (and later
deleted) once the node remembers it.

Expiry is checked on every read; no TTL index is relied upon. An expired node is
deleted lazily: its ``flow_nodes`` document first (conditionally, so a node just
refreshed stays), then its held document if still held, then its values; each hold
also sweeps a few expired nodes. Limit: without transactions, a node that expires
while being advanced can lose the value of that advance.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid

import pymongo
import pymongo.errors
from bson import ObjectId
from pymongo.database import Database

from sergeant.connector.base import Priority
from sergeant.connector.mongo.support import (
    PRIORITIES,
    READY,
    Document,
    allocate,
    where,
    wrap_errors,
)

__all__ = ["HELD", "Flows"]

#: ``tasks.state`` of a held item: never claimed, counted or purged.
HELD = "h"
#: Expired nodes each hold deletes, at most.
SWEEP_LIMIT = 20
HELD_FIELDS = {"state": 1, "token": 1, "armed": 1, "count": 1, "needed": 1, "empty": 1}


def _key(queue: str, flow_id: str, node: int) -> str:
    return json.dumps([queue, flow_id, node])


def _held_id(key: str) -> ObjectId:
    # An ObjectId, as deliveries carry the item id that way.
    return ObjectId(hashlib.sha256(key.encode()).digest()[:12])


def _add_member(held_id: ObjectId, member: int) -> pymongo.UpdateOne:
    """The update counting ``member`` once on the held document (if still held)."""
    field = f"members.{member}"
    return pymongo.UpdateOne(
        where(_id=held_id, state=HELD, **{field: {"$exists": False}}),
        {"$set": {field: 1}, "$inc": {"count": 1}},
    )


class Flows:
    """``hold``, ``advance``, ``flow_values`` and ``flow_released`` of a ``Node``."""

    address: str

    def _database(self) -> Database[Document]:
        raise NotImplementedError

    @wrap_errors
    def hold(
        self,
        queue: str,
        flow_id: str,
        node: int,
        payload: bytes,
        needed: int,
        priority: Priority = "NORMAL",
        ttl_seconds: float = 86400.0,
    ) -> None:
        """Keep ``payload`` back until ``needed`` members succeed; see ``Connector.hold``."""
        if priority not in PRIORITIES:
            raise ValueError(f"priority is {priority!r}; use 'NORMAL' or 'HIGH'")
        if needed < 1:
            raise ValueError(f"needed is {needed!r}; use at least 1")
        database, key = self._database(), _key(queue, flow_id, node)
        held_id = _held_id(key)
        _sweep(database)
        token = _touch(database, key, queue, ttl_seconds).get("inserted")
        if token is None:
            token = _insert_held(database, key, held_id, queue, payload, needed, priority)
        elif database.tasks.find_one({"_id": held_id}, {"_id": 1}) is None:
            return  # pushed and gone
        if token is None:
            return
        values = database.flow_values.find(where(node=key), {"member": 1})
        additions = [_add_member(held_id, int(value["member"])) for value in values]
        if additions:
            database.tasks.bulk_write(additions, ordered=False)
        database.tasks.update_one(
            where(_id=held_id, state=HELD, token=token), {"$set": {"armed": True}}
        )
        _release(database, key, held_id, token)

    @wrap_errors
    def advance(
        self,
        queue: str,
        flow_id: str,
        node: int,
        member: int,
        value: bytes,
        ttl_seconds: float = 86400.0,
    ) -> bool:
        """Record ``member``'s success, pushing the item if it completes the node; see
        ``Connector.advance``."""
        database, key = self._database(), _key(queue, flow_id, node)
        held_id = _held_id(key)
        token = _touch(database, key, queue, ttl_seconds).get("inserted")
        document = {
            "_id": json.dumps([queue, flow_id, node, member]),
            "node": key,
            "member": member,
            "value": bytes(value),
        }
        try:
            database.flow_values.insert_one(document)
        except pymongo.errors.DuplicateKeyError:
            pass  # recorded already: the first value stays
        database.tasks.bulk_write([_add_member(held_id, member)])
        return _release(database, key, held_id, token)

    @wrap_errors
    def flow_values(self, queue: str, flow_id: str, node: int) -> dict[int, bytes]:
        """The recorded values by member; see ``Connector.flow_values``."""
        database, key = self._database(), _key(queue, flow_id, node)
        if _live(database, key) is None:
            return {}
        found = database.flow_values.find(where(node=key), {"member": 1, "value": 1})
        return {int(d["member"]): bytes(d["value"]) for d in found}

    @wrap_errors
    def flow_released(self, queue: str, flow_id: str, node: int) -> bool:
        """Whether the node's item was pushed; see ``Connector.flow_released``."""
        database, key = self._database(), _key(queue, flow_id, node)
        marker = _live(database, key)
        if marker is None or marker.get("inserted") is None:
            return False
        held = database.tasks.find_one({"_id": _held_id(key)}, HELD_FIELDS)
        return not _still_held(held, marker["inserted"])


def _still_held(held: Document | None, token: str) -> bool:
    """Whether ``held`` is the node's document, not pushed yet."""
    return held is not None and held["state"] == HELD and held.get("token") == token


def _insert_held(
    database: Database[Document],
    key: str,
    held_id: ObjectId,
    queue: str,
    payload: bytes,
    needed: int,
    priority: Priority,
) -> str | None:
    """Insert the held document (or find it there) and have the node remember it.

    Returns its token, or None when the node's first document is gone already (this
    one, inserted after it, is deleted unpushed).
    """
    held = {
        "_id": held_id,
        "queue": queue,
        "state": HELD,
        "priority": PRIORITIES[priority],
        "seq": 0,
        "eta": 0.0,
        "payload": bytes(payload),
        "deliveries": 0,
        "claim": "",
        "token": uuid.uuid4().hex,
        "needed": needed,
        "empty": not payload,
        "members": {},
        "count": 0,
        "armed": False,
    }
    try:
        database.tasks.insert_one(held)
    except pymongo.errors.DuplicateKeyError:
        pass  # held already, perhaps by a hold that stopped half-way
    found = database.tasks.find_one({"_id": held_id}, {"token": 1})
    if found is None:
        return None
    token = str(found["token"])
    flow_nodes = database.flow_nodes
    flow_nodes.update_one(
        {"_id": key, "inserted": {"$exists": False}}, {"$set": {"inserted": token}}
    )
    marker = flow_nodes.find_one({"_id": key}, {"inserted": 1})
    if marker is None or marker.get("inserted") != token:
        # A document inserted after the first one was pushed and acknowledged.
        database.tasks.delete_one(where(_id=held_id, state=HELD, token=token))
        return None
    return token


def _release(database: Database[Document], key: str, held_id: ObjectId, token: str | None) -> bool:
    """Push the held item if the node is complete; whether it is (now or before).

    ``token`` is the node's ``inserted`` if known (written once, it never changes);
    if not, it is read again, as a hold may have written it since.
    """
    if token is None:
        marker = database.flow_nodes.find_one({"_id": key}, {"inserted": 1})
        token = None if marker is None else marker.get("inserted")
    if token is None:
        return False
    held = database.tasks.find_one({"_id": held_id}, HELD_FIELDS)
    if held is None or not _still_held(held, token):
        return True
    if not held.get("armed") or held["count"] < held["needed"]:
        return False
    complete = where(_id=held_id, state=HELD, token=token, armed=True)
    complete["count"] = {"$gte": held["needed"]}
    if held["empty"]:
        database.tasks.delete_one(complete)
        return True
    seq = allocate(database, "tail", 1)
    unset = dict.fromkeys(("token", "needed", "empty", "members", "count", "armed"), "")
    database.tasks.update_one(
        complete, {"$set": {"state": READY, "seq": seq, "eta": 0.0}, "$unset": unset}
    )
    return True


def _touch(database: Database[Document], key: str, queue: str, ttl_seconds: float) -> Document:
    """The node's ``flow_nodes`` document, made if missing or expired, its expiry moved."""
    _live(database, key)
    document = database.flow_nodes.find_one_and_update(
        {"_id": key},
        {"$set": {"queue": queue, "expires_at": time.time() + ttl_seconds}},
        upsert=True,
        return_document=pymongo.ReturnDocument.AFTER,
    )
    assert document is not None
    return document


def _live(database: Database[Document], key: str) -> Document | None:
    """The node's ``flow_nodes`` document unless missing or expired (then deleted)."""
    document = database.flow_nodes.find_one({"_id": key})
    if document is None or float(document["expires_at"]) > time.time():
        return document
    _expire(database, key)
    return None


def _expire(database: Database[Document], key: str) -> None:
    """Delete the node if it is expired (a node refreshed meanwhile stays)."""
    gone = database.flow_nodes.find_one_and_delete(
        {"_id": key, "expires_at": {"$lte": time.time()}}
    )
    if gone is not None:
        database.tasks.delete_one(where(_id=_held_id(key), state=HELD))
        database.flow_values.delete_many(where(node=key))


def _sweep(database: Database[Document]) -> None:
    """Delete a few expired nodes, so abandoned ones do not pile up."""
    expired = database.flow_nodes.find({"expires_at": {"$lte": time.time()}}, {"_id": 1})
    for document in expired.limit(SWEEP_LIMIT):
        _expire(database, str(document["_id"]))
