"""The data of the in-process broker: plain Python objects behind one condition.

Every method of :class:`sergeant.connector.memory.Connector` takes
:attr:`Store.cond` for the whole operation, so each is atomic; the structures here
are only touched under it.
"""

from __future__ import annotations

import collections
import dataclasses
import heapq
import itertools
import os
import threading
import typing

from sergeant.errors import ConnectorError

__all__ = ["Item", "Lease", "QueueData", "Store", "forget", "store"]


@dataclasses.dataclass(slots=True)
class Item:
    """One pushed payload; ``item_id`` stays the same across redeliveries."""

    item_id: str
    payload: bytes
    high: bool
    deliveries: int = 0
    #: The key it holds while it lives in the queue (``push_unique``), if any.
    unique_key: str | None = None
    #: Its group (``push_grouped``), if any; kept through leases and dead letters.
    group: str | None = None


@dataclasses.dataclass(slots=True)
class Lease:
    """A leased item; its token is a store-wide counter value, never reused."""

    item: Item
    token: int
    owner: str
    deadline: float


@dataclasses.dataclass(slots=True)
class Dead:
    """A dead-lettered item."""

    item: Item
    reason: str
    error: str
    dead_at: float


@dataclasses.dataclass(slots=True)
class QueueData:
    """Ready, delayed, leased and dead items of one queue."""

    high: collections.deque[Item] = dataclasses.field(default_factory=collections.deque)
    normal: collections.deque[Item] = dataclasses.field(default_factory=collections.deque)
    #: ``(due, order, item)``, earliest first.
    delayed: list[tuple[float, int, Item]] = dataclasses.field(default_factory=list)
    #: By token: a token alone names its lease.
    leased: dict[int, Lease] = dataclasses.field(default_factory=dict)
    dead: collections.deque[Dead] = dataclasses.field(default_factory=collections.deque)
    #: Held unique keys: key -> (task id, the item holding it).
    unique: dict[str, tuple[str, Item]] = dataclasses.field(default_factory=dict)
    #: Held workflow steps by (flow id, node) (see ``memory.flows``).
    flows: dict[tuple[str, int], typing.Any] = dataclasses.field(default_factory=dict)
    #: Per group: its leased count and recent lease times (see ``memory.groups``);
    #: empty until the queue's first grouped push, the only check plain queues pay.
    groups: dict[str, typing.Any] = dataclasses.field(default_factory=dict)
    #: The ring of groups (see ``memory.groups``) and where the next lease starts in it.
    ring: list[str] = dataclasses.field(default_factory=list)
    ring_next: int = 0

    def drop_lease(self, lease: Lease) -> None:
        """Forget a lease, giving its group's slot back."""
        del self.leased[lease.token]
        group = lease.item.group
        if group is not None and group in self.groups:
            self.groups[group].leased -= 1

    def free(self, items: typing.Iterable[Item]) -> None:
        """Free the keys of items that leave the queue for good."""
        if not self.unique:
            return  # the usual case: no unique items in this queue
        for item in items:
            if item.unique_key is not None:
                self.unique.pop(item.unique_key, None)
                item.unique_key = None

    def lane(self, item: Item) -> collections.deque[Item]:
        return self.high if item.high else self.normal

    def make_due_ready(self, now: float) -> None:
        """Move every due delayed item to the tail of its priority, earliest first."""
        delayed = self.delayed
        while delayed and delayed[0][0] <= now:
            item = heapq.heappop(delayed)[2]
            self.lane(item).append(item)

    def next_due(self) -> float | None:
        return self.delayed[0][0] if self.delayed else None

    def to_head(self, items: list[Item]) -> None:
        """Put items back at the head of their priority, keeping this order."""
        for item in reversed(items):
            self.lane(item).appendleft(item)

    def held(self, item_id: str, token: int) -> Lease | None:
        """The lease ``(item_id, token)`` names if still held; an empty id matches any."""
        lease = self.leased.get(token)
        if lease is None or (item_id and lease.item.item_id != item_id):
            return None
        return lease


class Store:
    """Everything one named in-process broker holds."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.pid = os.getpid()
        self.cond = threading.Condition(threading.Lock())
        self.queues: dict[str, QueueData] = {}
        #: key -> (value, expires_at or None)
        self.keys: dict[str, tuple[bytes, float | None]] = {}
        #: lock name -> (owner token, expires_at)
        self.locks: dict[str, tuple[str, float]] = {}
        #: worker id -> (info, expires_at)
        self.workers: dict[str, tuple[bytes, float]] = {}
        self.counter = itertools.count(1)

    def queue(self, name: str) -> QueueData:
        data = self.queues.get(name)
        if data is None:
            data = self.queues[name] = QueueData()
        return data

    def check_process(self) -> None:
        """Refuse use from a forked child: it holds a copy nobody else sees."""
        if os.getpid() != self.pid:
            raise ConnectorError(
                f"the in-process memory broker {self.name!r} was created in process "
                f"{self.pid} and cannot be used from process {os.getpid()} (a forked "
                "child sees a copy nobody else shares); use a redis, mongo or local broker "
                "for several processes"
            )


_STORES: dict[str, Store] = {}
_STORES_LOCK = threading.Lock()


def store(name: str) -> Store:
    """The store called ``name`` in this process, made on first use."""
    with _STORES_LOCK:
        found = _STORES.get(name)
        if found is None:
            found = _STORES[name] = Store(name)
        found.check_process()
        return found


def forget(name: str | None = None) -> None:
    """Drop the store called ``name`` (every store when None), emptying that broker.

    Connectors made afterwards with that name start empty; ones already made keep
    the old data until they are dropped.
    """
    with _STORES_LOCK:
        if name is None:
            _STORES.clear()
        else:
            _STORES.pop(name, None)
