"""Pushing tasks through the ``Broker``: encode, then hand the bytes to the connector.

A mixin of ``sergeant.broker.Broker``.
"""

from __future__ import annotations

import time
import typing

from sergeant.connector import Connector, Priority
from sergeant.encoder import Encoder
from sergeant.objects import Task

__all__ = ["Producing"]


class Producing:
    """Pushes over ``connector`` and ``encoder``."""

    connector: Connector
    encoder: Encoder

    def push_tasks(
        self,
        queue: str,
        tasks: typing.Sequence[Task],
        priority: Priority = "NORMAL",
        consumable_from: float = 0.0,
    ) -> int:
        """Encode and push tasks in one batch; returns how many were pushed."""
        payloads = self.encoder.encode_many(tasks)
        return self.connector.push_many(queue, payloads, priority, consumable_from)

    def push_new(
        self,
        queue: str,
        ids: typing.Sequence[str],
        kwargs_list: typing.Sequence[dict[str, typing.Any]],
        trace_id: str | None,
        priority: Priority,
        consumable_from: float,
    ) -> int:
        """Push new tasks made from their ids and kwargs, in one batch; returns how many.

        The fast path of ``Worker.push_tasks``: envelopes straight from kwargs, no
        ``Task`` object per task.
        """
        payloads = self.encoder.encode_new(ids, kwargs_list, trace_id, time.time())
        return self.connector.push_many(queue, payloads, priority, consumable_from)

    def push_new_unique(
        self,
        queue: str,
        ids: typing.Sequence[str],
        kwargs_list: typing.Sequence[dict[str, typing.Any]],
        unique_keys: typing.Sequence[str | None],
        trace_id: str | None,
        priority: Priority,
        consumable_from: float,
    ) -> list[str]:
        """:meth:`push_new` for tasks with unique keys (``Connector.push_unique``).

        Returns:
            Per task, the id of the task holding its key: its own when it was stored.
        """
        payloads = self.encoder.encode_new(ids, kwargs_list, trace_id, time.time())
        return self.connector.push_unique(
            queue, payloads, unique_keys, ids, priority, consumable_from
        )
