"""The Redis connector's waiting items, listed and removed (see ``_waiting_contract``).

A listed item's ``ref`` is its whole entry (header and payload): ``remove_waiting.lua``
looks for exactly that entry in its priority's ready list, then in its delayed set,
so an entry a lease took meanwhile (or one reclaim rewrote) is left alone. Listing
reads the lists and sets in chunks, not in one atomic step: items handed out
meanwhile may be listed or skipped, as in any scan. Both are occasional calls.
"""

from __future__ import annotations

import collections
import typing

from sergeant.connector.base import Waiting
from sergeant.connector.redis import entries, groups, keys
from sergeant.connector.redis._nodeset import NodeSet
from sergeant.connector.redis.nodes import Node

__all__ = ["WaitingItems", "remove_entries"]

#: Entries read per LRANGE / ZRANGE.
READ_CHUNK = 1000
#: Entries per ``remove_waiting.lua`` call: each LREM scans its list (about 1.5 ms
#: through 100,000 entries), so one call keeps Redis busy briefly even on a long queue.
REMOVE_CHUNK = 10


def _read(node: Node, k: keys.QueueKeys, limit: int) -> list[bytes]:
    """Up to ``limit`` waiting entries of one node, in hand-out order (a priority's
    grouped entries after its ungrouped ones, group by group)."""
    found: list[bytes] = []
    for name, kind in (
        (k.high, "list"),
        (k.group_ring, "H"),
        (k.delayed_high, "zset"),
        (k.normal, "list"),
        (k.group_ring, "N"),
        (k.delayed_normal, "zset"),
    ):
        if kind in ("H", "N"):
            found += groups.read_group_entries(node, k, kind == "H", limit - len(found))
            continue
        start = 0
        while len(found) < limit:
            stop = start + min(READ_CHUNK, limit - len(found)) - 1
            client = node.client
            is_list = kind == "list"
            read = client.lrange(name, start, stop) if is_list else client.zrange(name, start, stop)
            chunk = typing.cast(list[bytes], read)
            found += chunk
            if len(chunk) < stop - start + 1:
                break
            start = stop + 1
    return found[:limit]


def remove_entries(node: Node, k: keys.QueueKeys, chosen: typing.Sequence[bytes]) -> int:
    """Remove those of ``chosen`` that are still ready or delayed on ``node``; count them."""
    removed = 0
    for i in range(0, len(chosen), REMOVE_CHUNK):
        with node:
            removed += int(node.scripts.remove_waiting(k, chosen[i : i + REMOVE_CHUNK]))
    return removed


class WaitingItems(NodeSet):
    """``waiting`` and ``remove_waiting``, node by node."""

    def waiting(self, queue: str, limit: int = 100_000) -> list[Waiting]:
        """See :meth:`sergeant.connector.Connector.waiting`; ``node`` is the server's index."""
        found: list[Waiting] = []
        for node in self._all():
            if len(found) >= limit:
                break
            with node:
                read = _read(node, node.queue_keys(queue), limit - len(found))
            found += [Waiting(e, e[entries.HEADER :], node.index) for e in read]
        return found

    def remove_waiting(self, queue: str, items: typing.Sequence[Waiting]) -> int:
        """See :meth:`sergeant.connector.Connector.remove_waiting`; each item is removed
        on the server that listed it."""
        nodes = self._all()
        by_node: dict[int, list[bytes]] = collections.defaultdict(list)
        for item in items:
            by_node[item.node].append(item.ref)
        return sum(
            remove_entries(nodes[n], nodes[n].queue_keys(queue), refs)
            for n, refs in by_node.items()
        )
