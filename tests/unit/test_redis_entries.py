"""The Redis entry format: headers, delivery counts and slot ranges (no server needed)."""

from __future__ import annotations

import os

from hypothesis import given
from hypothesis import strategies as st

from sergeant.connector.redis import entries
from sergeant.connector.redis.lane import bulk


def test_entries_carry_priority_a_unique_id_and_no_earlier_deliveries() -> None:
    ids = entries.IdMaker()
    made = entries.make_entries(ids, b"H", [b"p1", b"p2"]) + entries.make_entries(ids, b"N", [b""])
    assert [e[:1] for e in made] == [b"H", b"H", b"N"]
    assert len({entries.split_entry(e)[0] for e in made}) == 3
    assert [entries.split_entry(e)[1] for e in made] == [b"p1", b"p2", b""]
    assert all(entries.deliveries_of(e) == 1 for e in made)
    assert all(
        len(e) == entries.HEADER + len(p) for e, p in zip(made, [b"p1", b"p2", b""], strict=True)
    )


def test_delivery_count_is_read_from_the_header() -> None:
    [entry] = entries.make_entries(entries.IdMaker(), b"N", [b"x"])
    assert entries.deliveries_of(entry[:21] + b"0004" + entry[25:]) == 5


def test_a_forked_child_makes_other_ids() -> None:
    ids = entries.IdMaker()
    parent = ids.reserve(1)[0]
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        os.write(write, ids.reserve(1)[0])
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 100)
    assert child != parent


def _named(text: str) -> set[int]:
    """The slots a ``slot_ranges`` text names."""
    named: set[int] = set()
    for part in filter(None, text.split(",")):
        low, high = (int(x) for x in part.split("-"))
        named.update(range(low, high + 1))
    return named


@given(st.sets(st.integers(min_value=1, max_value=3000)))
def test_slot_ranges_name_exactly_the_slots(slots: set[int]) -> None:
    assert _named(entries.slot_ranges(slots)) == slots


@given(st.lists(st.integers(min_value=1, max_value=300), max_size=50))
def test_slot_ranges_of_a_list_in_any_order_name_exactly_its_slots(slots: list[int]) -> None:
    assert _named(entries.slot_ranges(slots)) == set(slots)


@given(st.lists(st.binary(max_size=40), max_size=30), st.integers(0, 30), st.integers(0, 30))
def test_new_entries_frame_and_split_as_the_entries_they_make(
    payloads: list[bytes], begin: int, end: int
) -> None:
    items = entries.NewEntries(entries.IdMaker(), b"N", payloads)
    made = items.made()
    assert [entries.split_entry(e)[1] for e in made] == payloads
    assert items.framed() == b"".join(map(bulk, made))
    part = items.part(begin, end)
    assert part.made() == made[begin:end]
    assert part.framed() == b"".join(map(bulk, made[begin:end]))
