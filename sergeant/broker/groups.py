"""Grouped tasks through the ``Broker``: pushing them under their group keys, the
per-group limits a consumer's leases obey, and the counts an operator reads (see
``Connector.push_grouped``: the guarantees are the connector's).

A mixin of ``sergeant.broker.Broker``.
"""

from __future__ import annotations

import time
import typing

from sergeant.connector import Connector, GroupCount, GroupLimits, Priority
from sergeant.encoder import Encoder

__all__ = ["GroupCount", "Grouping"]


class Grouping:
    """Groups over ``connector`` and ``encoder``."""

    connector: Connector
    encoder: Encoder

    def push_new_grouped(
        self,
        queue: str,
        ids: typing.Sequence[str],
        kwargs_list: typing.Sequence[dict[str, typing.Any]],
        group_keys: typing.Sequence[str | None],
        trace_id: str | None,
        priority: Priority,
        consumable_from: float,
    ) -> int:
        """Push new tasks, each in the group its key names (None: no group), in one
        batch per kind; returns how many were pushed."""
        payloads = self.encoder.encode_new(ids, kwargs_list, trace_id, time.time())
        grouped = [(p, g) for p, g in zip(payloads, group_keys, strict=True) if g is not None]
        plain = [p for p, g in zip(payloads, group_keys, strict=True) if g is None]
        if grouped:
            self.connector.push_grouped(
                queue, [p for p, _ in grouped], [g for _, g in grouped], priority, consumable_from
            )
        if plain:
            self.connector.push_many(queue, plain, priority, consumable_from)
        return len(payloads)

    def set_group_limits(
        self,
        queue: str,
        concurrency: int = 0,
        rate_tasks: int = 0,
        rate_seconds: float = 0.0,
    ) -> None:
        """Make this broker's leases of ``queue`` obey these per-group bounds (0: none).

        A consumer calls it from ``WorkerConfig.group_concurrency`` and
        ``group_rate_limit`` before its first lease. A connector without groups
        accepts "no bound" and refuses real limits with ``NotImplementedError``.
        """
        limits = GroupLimits(concurrency, rate_tasks, rate_seconds)
        try:
            self.connector.set_group_limits(queue, limits)
        except NotImplementedError:
            if limits != GroupLimits():
                raise

    def group_counts(self, queue: str, limit: int = 10) -> list[GroupCount]:
        """The ``limit`` largest groups of ``queue`` (ready + leased), largest first;
        empty on a connector without groups."""
        try:
            return self.connector.group_counts(queue, limit)
        except NotImplementedError:
            return []
