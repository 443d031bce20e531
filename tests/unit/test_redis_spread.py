"""Acknowledgements as the scripts take them: grouped by node, then by batch (token)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sergeant.connector import Delivery
from sergeant.connector.redis import spread

_deliveries = st.lists(
    st.builds(
        lambda token, node, slot: Delivery(b"", "id", token, 1, node, slot),
        st.integers(1, 3),
        st.integers(0, 2),
        st.integers(1, 40),
    ),
    max_size=40,
)


def _named(pairs: list[str]) -> set[tuple[int, int]]:
    named: set[tuple[int, int]] = set()
    for token, ranges in zip(pairs[::2], pairs[1::2], strict=True):
        for part in filter(None, ranges.split(",")):
            low, high = (int(x) for x in part.split("-"))
            named.update((int(token), slot) for slot in range(low, high + 1))
    return named


@given(_deliveries)
def test_settle_pairs_name_each_batch_and_exactly_its_slots(deliveries: list[Delivery]) -> None:
    pairs = spread.settle_pairs(deliveries)
    assert _named(pairs) == {(d.token, d.slot) for d in deliveries}
    assert len(pairs[::2]) == len(set(pairs[::2]))  # one pair per batch


@given(_deliveries)
def test_group_by_node_puts_each_delivery_with_its_node(deliveries: list[Delivery]) -> None:
    groups = spread.group_by_node(deliveries, 3)
    assert sorted((n, d) for n, group in groups.items() for d in group) == sorted(
        (d.node, d) for d in deliveries
    )
