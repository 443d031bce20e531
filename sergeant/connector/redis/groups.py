"""The Redis connector's groups (see ``_group_contract``): ``push_grouped.lua`` stores
grouped entries in per-group lists and a ring; ``lease.lua`` and ``pop.lua`` take them
round-robin (``ring_take`` in ``lua/_lib.lua``); every script that ends a lease gives
the group's slot back in the same call. On several independent nodes a group lives
on the node its key hashes to (as a unique key does), so its slots and its rate are
counted in one place (on a sharded cluster, on the shard it hashes to)."""

from __future__ import annotations

import collections
import typing

from sergeant.connector import _unique
from sergeant.connector._records import GroupCount, GroupLimits
from sergeant.connector.base import Priority
from sergeant.connector.redis import entries, keys, shards
from sergeant.connector.redis._nodeset import NodeSet
from sergeant.connector.redis.group_scripts import GroupScripts, encode_limits
from sergeant.connector.redis.nodes import Node
from sergeant.errors import BrokerFull, ConfigError

__all__ = ["Groups", "check_keys", "read_group_entries"]


def check_keys(items: typing.Sequence[bytes], group_keys: typing.Sequence[str]) -> None:
    """Refuse group keys that do not name one non-empty group per item."""
    if len(items) != len(group_keys):
        raise ValueError(
            f"push_grouped got {len(items)} items and {len(group_keys)} group keys; "
            "give one group key per item"
        )
    if not all(isinstance(key, str) and key for key in group_keys):
        raise ValueError("every group key must be a non-empty string")


def _scripts(node: Node) -> GroupScripts:
    if node.group_scripts is None:
        node.group_scripts = GroupScripts(node.client, node.lane, node.library)
    return node.group_scripts


def read_group_entries(node: Node, k: keys.QueueKeys, high: bool, limit: int) -> list[bytes]:
    """Up to ``limit`` ready grouped entries of one priority on ``node``, group by
    group in ring order (a scan: not one atomic read)."""
    found: list[bytes] = []
    ring = typing.cast(list[bytes], node.client.lrange(k.group_ring, 0, -1))
    for member in ring:
        if len(found) >= limit:
            break
        if member:
            group_list = keys.group_list(k, member.decode(), high)
            read = node.client.lrange(group_list, 0, limit - len(found) - 1)
            found += typing.cast(list[bytes], read)
    return found


class Groups(NodeSet):
    """``push_grouped``, ``set_group_limits`` and ``group_counts``, node by node."""

    def push_grouped(
        self,
        queue: str,
        items: typing.Sequence[bytes],
        group_keys: typing.Sequence[str],
        priority: Priority = "NORMAL",
        consumable_from: float = 0.0,
    ) -> None:
        """See :meth:`sergeant.connector.Connector.push_grouped`: one
        ``push_grouped.lua`` call per node holding some of the groups."""
        if priority not in ("NORMAL", "HIGH"):
            raise ConfigError(f"priority is {priority!r}; use 'NORMAL' or 'HIGH'")
        check_keys(items, group_keys)
        if not items:
            return
        self._record_shards(queue)
        high = priority == "HIGH"
        made = entries.make_entries(self._ids, b"H" if high else b"N", items)
        nodes = self._all()
        try:
            for index, positions in _unique.groups(queue, group_keys, len(nodes)).items():
                pairs: list[bytes | str] = []
                for position in positions:
                    pairs += (made[position], group_keys[position])
                node = nodes[index]
                k = node.queue_keys(queue)
                with node:
                    _scripts(node).push_grouped(k, high, consumable_from, pairs)
        except BrokerFull as exc:
            self._refusals.refused(exc)
            raise

    def set_group_limits(self, queue: str, limits: GroupLimits) -> None:
        """See :meth:`sergeant.connector.Connector.set_group_limits`: every lease of
        ``queue`` by this connector sends them to ``lease.lua``."""
        encoded = encode_limits(limits)
        for tag in shards.shard_tags(queue, self._settings.shards):
            leases = keys.queue_keys(tag).leases
            if encoded:
                self._group_limits[leases] = encoded
            else:
                self._group_limits.pop(leases, None)

    def group_counts(self, queue: str, limit: int = 20) -> list[GroupCount]:
        """See :meth:`sergeant.connector.Connector.group_counts`: each node's group
        state read whole (HGETALL), summed."""
        ready: collections.Counter[str] = collections.Counter()
        leased: collections.Counter[str] = collections.Counter()
        for node in self._all():
            with node:
                group_state = node.queue_keys(queue).group_state
                state = typing.cast(dict[bytes, bytes], node.client.hgetall(group_state))
            for field, value in state.items():
                kind, _, group = field.decode().partition(":")
                if kind == "r":
                    ready[group] += int(value)
                elif kind == "l":
                    leased[group] += int(value)
        found = [
            GroupCount(group, max(ready[group], 0), max(leased[group], 0))
            for group in {*ready, *leased}
            if ready[group] > 0 or leased[group] > 0
        ]
        found.sort(key=lambda c: c.ready + c.leased, reverse=True)
        return found[: max(limit, 0)]
