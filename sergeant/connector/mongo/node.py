"""One MongoDB deployment of the connector (one ``nodes`` entry, or the ``url``).

``sergeant.connector.mongo.Connector`` spreads queues over one or several of these.
Collections of the ``database`` (default ``'sergeant'``):

* ``tasks``: one document per ready, delayed or leased item::

      {_id: ObjectId, queue, state, priority, seq, eta, payload, deliveries,
       claim, owner, deadline[, unique_key, task_id][, group_key[, slot]]}

  ``state`` is ``'r'`` (ready, or delayed while ``eta`` is in the future), ``'l'``
  (leased until ``deadline``) or ``'m'`` (being moved to ``dead``). ``priority`` is
  0 for HIGH, 1 for NORMAL. ``seq`` orders items within a priority: pushes take
  increasing values from the ``tail`` counter, releases and reclaims take
  decreasing negative ones from the ``head`` counter, so they come first. Every
  entry into ready takes a fresh ``seq`` that is never reused, so ``(_id, seq)``
  names one stay in ready: a claim that matches every candidate it read knows it
  got them unchanged and needs no second read. Indexes: ``(queue, state,
  priority, seq)``, ``claim``, and unique ``(queue, unique_key)`` over the documents
  that hold a key (see ``unique``).
* ``dead``: ``{_id (the item's), queue, seq, payload, reason, error, deliveries,
  dead_at, claim}``, oldest first by ``(dead_at, seq)``; indexes ``(queue,
  dead_at, seq)`` and ``claim``.
* ``counters``: ``{_id: 'tail' | 'head', value}``, one round trip per batch.
* ``workers``: live-worker heartbeats, ``{_id: worker id, info, expires_at}``
  (see ``registry``).
* ``keys``: ``{_id: key, value, expires_at}`` (see ``keys``); ``locks``:
  ``{_id: name, token, expires_at}``. Expiry is checked on every read; no TTL index
  is relied upon.
* ``flow_nodes``, ``flow_values`` (held workflow steps, see ``flows``) and ``once``
  (once pushes, see ``once``): their items wait in ``tasks`` with ``state`` ``'h'``.

Batches are claimed, not locked: find candidate ids in order, then
``update_many`` them from ready to leased under a fresh ``claim`` id; a caller
that loses a race simply gets fewer, and loops while others make progress. Every
later step filters on ``state`` and the fencing token, so each transition
happens once. The token is the lease's ``claim`` (a random UUID, as an int): a
fresh one per leasing call, so it never repeats for an item, whatever happens to
its delivery count. ``pop_many`` claims then deletes (one item:
``find_one_and_delete``); if the popper dies in between, its claim expires after
``POP_CLAIM_SECONDS`` and ``reclaim_expired`` requeues the items rather than lose
them. The claim itself lives in ``claim``; releases, reclaims and charges in ``requeue``;
moves to and from ``dead`` in ``dead``; listing and removing waiting items in
``waiting``; grouped items (their ring, slots and tickets) in ``groups``; the client,
settings and error wrapping in ``support``; the lock in ``lock``.

Delayed items keep the ``seq`` of their push: once due, they are served in push
order among the other ready items of their priority (of their group, if grouped).

Clock: MongoDB has no cheap server clock here, so lease deadlines, etas and
expiries are the clients' ``time.time()``; keep worker clocks in sync (NTP). Pushes
are not transactional: a crash in a large ``push_many`` can leave a prefix queued.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import pymongo
from pymongo.database import Database

from sergeant.connector import _unique, base
from sergeant.connector._polling import poll
from sergeant.connector.base import DeadLetter, Delivery, Priority, ReclaimResult
from sergeant.connector.mongo import keys as mongo_keys
from sergeant.connector.mongo import registry
from sergeant.connector.mongo.dead import requeue, start_moves
from sergeant.connector.mongo.flows import Flows
from sergeant.connector.mongo.groups import NO_LIMITS, Groups, claim, has_grouped
from sergeant.connector.mongo.lock import Lock
from sergeant.connector.mongo.once import Once
from sergeant.connector.mongo.requeue import charge, reclaim_expired, release, release_owned
from sergeant.connector.mongo.support import (
    DEAD_ORDER,
    LEASED,
    ORDER,
    PRIORITIES,
    READY,
    Document,
    MongoClientHandle,
    allocate,
    count,
    group_by_token,
    held_query,
    new_item,
    where,
    wrap_errors,
)
from sergeant.connector.mongo.unique import push_unique
from sergeant.connector.mongo.waiting import WaitingItems

__all__ = ["Lock", "Node"]

#: First and largest pause, in seconds, of a polling ``lease_many(block_seconds=...)``.
POLL_FIRST_SECONDS = 0.002
POLL_MAX_SECONDS = 0.05
#: Seconds a pop's claim lasts: if the popper dies in between, the items come back.
POP_CLAIM_SECONDS = 60.0
POP_OWNER = "<pop>"


class Node(WaitingItems, Flows, Groups, Once, base.Connector):
    """Queues, leases, dead letters, held steps, keys and locks in one MongoDB deployment.

    Args:
        handle: the deployment's client (opened lazily, per process).
        index: its place among the connector's nodes; its deliveries and dead letters
            carry it in ``node``.
    """

    name = "mongo"
    supports_blocking = False

    def __init__(self, handle: MongoClientHandle, index: int = 0) -> None:
        self._handle = handle
        self.index = index
        self.address = handle.address
        self._group_limits: dict[str, base.GroupLimits] = {}

    def _database(self) -> Database[Document]:
        return self._handle.database()

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
        first = allocate(self._database(), "tail", len(payloads))
        level, eta = PRIORITIES[priority], float(consumable_from)
        documents = [
            new_item(queue, level, first + offset, eta, bytes(payload))
            for offset, payload in enumerate(payloads)
        ]
        self._database().tasks.insert_many(documents, ordered=True)
        return len(documents)

    @wrap_errors
    def push_unique(
        self,
        queue: str,
        items: Sequence[bytes],
        unique_keys: Sequence[str | None],
        task_ids: Sequence[str],
        priority: Priority = "NORMAL",
        consumable_from: float = 0.0,
    ) -> list[str]:
        """Push items holding unique keys (see ``unique``); see ``Connector.push_unique``."""
        if priority not in PRIORITIES:
            raise ValueError(f"priority is {priority!r}; use 'NORMAL' or 'HIGH'")
        _unique.check(items, unique_keys, task_ids)
        rows = list(zip(items, unique_keys, task_ids, strict=True))
        return push_unique(self._database(), queue, PRIORITIES[priority], consumable_from, rows)

    @wrap_errors
    def pop_many(self, queue: str, count: int) -> list[bytes]:
        """Remove and return up to ``count`` ready items; see ``Connector.pop_many``."""
        if count <= 0:
            return []
        tasks = self._database().tasks
        grouped = has_grouped(tasks, queue)
        if count == 1 and not grouped:
            document = tasks.find_one_and_delete(
                where(queue=queue, state=READY, eta={"$lte": time.time()}), sort=ORDER
            )
            return [] if document is None else [document["payload"]]
        claimed = claim(
            self._database(), queue, count, POP_OWNER, POP_CLAIM_SECONDS, NO_LIMITS, grouped
        )
        if claimed:
            ids = [document["_id"] for document in claimed]
            tasks.delete_many({"_id": {"$in": ids}, "state": LEASED})
        return [document["payload"] for document in claimed]

    @wrap_errors
    def length(self, queue: str, include_delayed: bool = False) -> int:
        """Number of ready (and, when asked, delayed) items; see ``Connector.length``."""
        query = where(queue=queue, state=READY)
        if not include_delayed:
            query["eta"] = {"$lte": time.time()}
        return count(self._database().tasks, query)

    @wrap_errors
    def length_by_priority(self, queue: str) -> dict[Priority, int]:
        """Ready items per priority; see ``Connector.length_by_priority``."""
        high, normal = registry.length_by_priority(self._database(), queue)
        return {"HIGH": high, "NORMAL": normal}

    @wrap_errors
    def purge(self, queue: str) -> int:
        """Delete every ready and delayed item; see ``Connector.purge``."""
        tasks = self._database().tasks
        return tasks.delete_many(where(queue=queue, state=READY)).deleted_count

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
        database, limits = self._database(), self._limits_of(queue)
        claimed = (
            poll(
                lambda: claim(database, queue, count, owner, lease_seconds, limits) or None,
                block_seconds,
                POLL_FIRST_SECONDS,
                POLL_MAX_SECONDS,
            )
            or []
        )
        node = self.index
        return [
            Delivery(d["payload"], str(d["_id"]), int(d["claim"], 16), d["deliveries"], node)
            for d in claimed
        ]

    @wrap_errors
    def ack_many(self, queue: str, deliveries: Sequence[Delivery]) -> int:
        """Delete leased items whose token is current; see ``Connector.ack_many``."""
        groups = group_by_token(deliveries)
        if not groups:
            return 0
        operations = [
            pymongo.DeleteMany(held_query(queue, ids, token)) for token, ids in groups.items()
        ]
        return self._database().tasks.bulk_write(operations, ordered=False).deleted_count

    @wrap_errors
    def release_many(self, queue: str, deliveries: Sequence[Delivery]) -> int:
        """Put leased items back at the head, in the given order; see ``Connector.release_many``."""
        return release(self._database(), queue, deliveries)

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
            pymongo.UpdateMany(held_query(queue, ids, token), update)
            for token, ids in groups.items()
        ]
        return self._database().tasks.bulk_write(operations, ordered=False).matched_count

    @wrap_errors
    def reclaim_expired(self, queue: str, max_deliveries: int) -> ReclaimResult:
        """Requeue or dead-letter items whose lease ran out; see ``Connector.reclaim_expired``."""
        return reclaim_expired(self._database(), queue, max_deliveries)

    @wrap_errors
    def charge_many(
        self,
        queue: str,
        deliveries: Sequence[Delivery],
        max_deliveries: int,
        reason: str,
        error: str = "",
    ) -> ReclaimResult:
        """Requeue, or dead-letter past the bound, held items whose run ended their
        worker; see ``Connector.charge_many`` (the delivery was counted at lease)."""
        return charge(self._database(), queue, deliveries, max_deliveries, reason, error)

    @wrap_errors
    def extend_owned(self, queue: str, owner: str, lease_seconds: float) -> int:
        """Move the deadline of every lease of ``owner``; see ``Connector.extend_owned``."""
        update = {"$set": {"deadline": time.time() + lease_seconds}}
        query = where(queue=queue, state=LEASED, owner=owner)
        return self._database().tasks.update_many(query, update).matched_count

    @wrap_errors
    def release_owned(self, queue: str, owner: str) -> int:
        """Release every lease of ``owner``, in lease order; see ``Connector.release_owned``."""
        return release_owned(self._database(), queue, owner)

    @wrap_errors
    def leased_count(self, queue: str) -> int:
        """Number of leased items, expired ones included; see ``Connector.leased_count``."""
        return count(self._database().tasks, where(queue=queue, state=LEASED))

    # -- dead letters -------------------------------------------------------------

    @wrap_errors
    def dead_letter_many(
        self, queue: str, deliveries: Sequence[Delivery], reason: str, error: str = ""
    ) -> int:
        """Move leased items to the dead letters; see ``Connector.dead_letter_many``."""
        moved = 0
        for token, ids in group_by_token(deliveries).items():
            query = held_query(queue, ids, token)
            moved += start_moves(self._database(), query, reason, error, time.time())
        return moved

    @wrap_errors
    def dead_letters(self, queue: str, limit: int = 100) -> list[DeadLetter]:
        """Up to ``limit`` dead items, oldest first; see ``Connector.dead_letters``."""
        if limit <= 0:
            return []
        documents = self._database().dead.find(where(queue=queue)).sort(DEAD_ORDER).limit(limit)
        return [
            DeadLetter(
                str(d["_id"]),
                d["payload"],
                d["reason"],
                d["error"],
                d["deliveries"],
                d["dead_at"],
                self.index,
            )
            for d in documents
        ]

    @wrap_errors
    def requeue_dead(self, queue: str, limit: int = 0) -> int:
        """Move dead items back to the tail of NORMAL; see ``Connector.requeue_dead``."""
        return requeue(self._database(), queue, limit)

    @wrap_errors
    def purge_dead(self, queue: str) -> int:
        """Delete every dead item of a queue; see ``Connector.purge_dead``."""
        return self._database().dead.delete_many(where(queue=queue)).deleted_count

    @wrap_errors
    def dead_count(self, queue: str) -> int:
        """Number of dead items of a queue; see ``Connector.dead_count``."""
        return count(self._database().dead, where(queue=queue))

    # -- keys and locks -----------------------------------------------------------

    @wrap_errors
    def key_set(self, key: str, value: bytes, ttl_seconds: float | None = None) -> None:
        """Store ``value`` under ``key``; see ``Connector.key_set``."""
        mongo_keys.put(self._database(), key, value, ttl_seconds)

    @wrap_errors
    def key_get(self, key: str) -> bytes | None:
        """The value under ``key`` unless missing or expired; see ``Connector.key_get``."""
        return mongo_keys.get(self._database(), key)

    @wrap_errors
    def key_delete(self, key: str) -> bool:
        """Delete ``key``; True if it existed and had not expired."""
        return mongo_keys.delete(self._database(), key)

    def lock(self, name: str) -> Lock:
        """A lock object for ``name`` (not yet acquired); see ``Lock``."""
        return Lock(self._database, self.address, name)

    # -- live workers (see ``registry``) -------------------------------------

    @wrap_errors
    def register_worker(self, worker_id: str, info: bytes, ttl_seconds: float) -> None:
        """Publish or refresh a worker's heartbeat; see ``Connector.register_worker``."""
        registry.register(self._database(), worker_id, info, ttl_seconds)

    @wrap_errors
    def unregister_worker(self, worker_id: str) -> bool:
        """Remove a worker's heartbeat; see ``Connector.unregister_worker``."""
        return registry.unregister(self._database(), worker_id)

    @wrap_errors
    def workers(self) -> list[bytes]:
        """The info of every live worker; see ``Connector.workers``."""
        return registry.live(self._database())

    # -- lifecycle ----------------------------------------------------------------

    @wrap_errors
    def ping(self) -> None:
        """Check the server answers; raise ``BrokerUnavailable`` naming its address if not."""
        self._database().command("ping")

    def close(self) -> None:
        """Close the client of this process, if one was opened."""
        self._handle.close()
