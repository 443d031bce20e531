"""Entries: how an item travels through a queue's Redis structures.

An entry is a fixed 25-byte header then the payload::

    b"N" + item id (20 chars) + earlier deliveries (4 digits) + payload

The first byte is the priority the item was pushed with (``H`` or ``N``; release
and reclaim return it there). The id is made here, by the pushing client: 12 hex
characters random per process (and per fork) then an 8-hex-digit counter, so ids
are unique without a round trip. The last four digits count the item's earlier
deliveries that ended without an acknowledgement (reclaim adds one; a release does
not), so a delivery's count is that number plus one. Lua reads and rewrites headers
only off the hot path (reclaim, dead letters); see ``lua/_lib.lua``.
"""

from __future__ import annotations

import os
import threading
import typing

from sergeant.connector._records import Delivery

__all__ = [
    "HEADER",
    "IdMaker",
    "NewEntries",
    "deliveries_of",
    "leased",
    "make_entries",
    "payloads",
    "slot_ranges",
    "split_entry",
]

#: Bytes before the payload in every entry.
HEADER = 25
_FRESH = b"0000"
_new_delivery = tuple.__new__


class IdMaker:
    """Unique item ids for this process: a random prefix and a counter, fork-aware."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid = -1
        self._prefix = b""
        self._next = 0

    def reserve(self, count: int) -> tuple[bytes, int]:
        """Room for ``count`` new ids: ``(prefix, first counter value)``."""
        with self._lock:
            if self._pid != os.getpid() or self._next + count >= 1 << 32:
                # A forked child must not repeat its parent's ids; nor may the
                # counter outgrow its 8 hex digits.
                self._pid, self._prefix, self._next = os.getpid(), os.urandom(6).hex().encode(), 0
            first = self._next
            self._next += count
        return self._prefix, first


class NewEntries:
    """Entries about to be pushed, kept as their parts (priority and id prefix, first
    counter value, payloads) until written: a push on the lane formats each entry
    straight into its frame of the Redis protocol, one formatting per entry, not two.
    """

    __slots__ = ("_first", "_start", "payloads")

    def __init__(self, ids: IdMaker, priority: bytes, payloads: typing.Sequence[bytes]) -> None:
        """New ids for ``payloads``, pushed with ``priority`` (``b'H'`` or ``b'N'``)."""
        prefix, self._first = ids.reserve(len(payloads))
        self._start = priority + prefix
        self.payloads = payloads

    def __len__(self) -> int:
        return len(self.payloads)

    def part(self, begin: int, end: int) -> NewEntries:
        """The entries ``begin`` to ``end`` (as a slice), with the same ids."""
        part = object.__new__(NewEntries)
        part._start, part._first = self._start, self._first + begin
        part.payloads = self.payloads[begin:end]
        return part

    def made(self) -> list[bytes]:
        """The entries, in order."""
        entry = self._start + b"%08x0000%s"  # the start in the format: one value less each
        return [entry % (n, p) for n, p in enumerate(self.payloads, self._first)]

    def framed(self) -> bytes:
        """The entries as consecutive bulk strings of the Redis protocol (each
        ``$<length>\\r\\n<entry>\\r\\n``), the arguments of a raw command."""
        # The start (priority and hex prefix: no '%') is part of the format, not a value
        # formatted into each entry: about a sixth less per entry.
        frame, header = b"$%d\r\n" + self._start + b"%08x0000%s\r\n", HEADER
        return b"".join(
            [frame % (header + len(p), n, p) for n, p in enumerate(self.payloads, self._first)]
        )


def make_entries(ids: IdMaker, priority: bytes, payloads: typing.Sequence[bytes]) -> list[bytes]:
    """Entries for ``payloads``, pushed with ``priority`` (``b'H'`` or ``b'N'``)."""
    return NewEntries(ids, priority, payloads).made()


def deliveries_of(entry: bytes) -> int:
    """The delivery count of a leased entry: its earlier deliveries plus this one."""
    earlier = entry[21:HEADER]
    return 1 if earlier == _FRESH else int(earlier) + 1


def payloads(popped: list[bytes]) -> list[bytes]:
    """The payloads of popped entries, in order."""
    return [entry[HEADER:] for entry in popped]


def split_entry(entry: bytes) -> tuple[str, bytes]:
    """``(item id, payload)`` of an entry."""
    return entry[1:21].decode(), entry[HEADER:]


def leased(entries: list[bytes], token: int, node: int) -> list[Delivery]:
    """The deliveries of one leased batch: slot ``k`` (1-based) is ``entries[k - 1]``."""
    # deliveries_of inlined, and globals bound to locals: this runs once per task.
    fresh, header, new, delivery = _FRESH, HEADER, _new_delivery, Delivery
    return [
        new(
            delivery,
            (
                e[header:],
                e[1:21].decode(),
                token,
                1 if e.startswith(fresh, 21) else int(e[21:header]) + 1,  # no slice
                node,
                slot,
            ),
        )
        for slot, e in enumerate(entries, 1)
    ]


def slot_ranges(slots: typing.Iterable[int]) -> str:
    """Slots as the scripts read them: ``'1-3,7'`` for 1, 2, 3, 7."""
    if type(slots) is list and slots and slots == list(range(slots[0], slots[-1] + 1)):
        return f"{slots[0]}-{slots[-1]}"  # a whole batch in order, the usual case
    ordered = sorted(set(slots))
    if not ordered:
        return ""
    if ordered[-1] - ordered[0] + 1 == len(ordered):  # one run: the usual case
        return f"{ordered[0]}-{ordered[-1]}"
    parts = []
    start = previous = ordered[0]
    for slot in ordered[1:]:
        if slot != previous + 1:
            parts.append(f"{start}-{previous}")
            start = slot
        previous = slot
    parts.append(f"{start}-{previous}")
    return ",".join(parts)
