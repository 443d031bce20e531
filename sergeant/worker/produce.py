"""Producing on ``Worker``: ``push_task``, ``push_tasks`` and ``get_result``.

A mixin of ``sergeant.worker.Worker``; the methods keep their 0.27 signatures
and documentation there.
"""

from __future__ import annotations

import typing

from sergeant.broker import Broker, Priority, checked_kwargs
from sergeant.broker.flows import FLOW_PREFIX
from sergeant.broker.results import ResultStore
from sergeant.config import WorkerConfig
from sergeant.errors import ConfigError
from sergeant.objects import new_task_ids
from sergeant.worker import grouping

__all__ = ["Producing"]


class Producing:
    """Pushing tasks and fetching their results."""

    config: WorkerConfig
    broker: Broker
    _result_store: ResultStore

    if typing.TYPE_CHECKING:

        def get_trace_id(self) -> str | None: ...

    def push_task(
        self,
        kwargs: dict[str, typing.Any],
        task_name: str | None = None,
        priority: Priority = "NORMAL",
        consumable_from: float | None = None,
        trace_id: str | None = None,
        unique_key: str | None = None,
        group_key: str | None = None,
    ) -> str:
        """Push one task; returns its id.

        With ``unique_key``, the task is stored only if no task holding that key is
        queued, delayed or running in the queue; otherwise nothing is stored and the
        holder's id is returned. The key is free again once its task is settled
        (acknowledged, dead-lettered or purged; popped, under at-most-once). The
        broker checks and stores in one atomic step. It is also the safe retry of a
        push that raised ``ConnectionLost`` (which may or may not have stored it):
        push again with the same key and get the stored task's id, or store it now.

        Args:
            kwargs: the task's arguments.
            task_name: the queue; defaults to this worker's ``config.name``.
            priority: ``'HIGH'`` is served before ``'NORMAL'``.
            consumable_from: Unix seconds before which the task is not handed out.
            trace_id: a correlation id; inside ``work`` it defaults to the running
                task's trace id.
            unique_key: a non-empty str; see above.
            group_key: a non-empty str naming the task's group (a tenant, a
                customer): the queue's workers lease groups round-robin, one task
                per group per round, within ``WorkerConfig.group_concurrency`` and
                ``group_rate_limit``. Not together with ``unique_key``.

        Raises:
            TypeError: ``kwargs`` is not a dict (with str keys, under the msgpack
                and json serializers), or ``unique_key`` is not a str; nothing is
                pushed.
            ValueError: ``unique_key`` or ``group_key`` is empty, or both are given
                (a grouped task cannot hold a unique key).
            sergeant.errors.EncodingError: a value cannot be encoded by the serializer.
            sergeant.errors.ConnectorError: the broker did not take the task.
        """
        checked = checked_kwargs([kwargs], "push_task(kwargs)", False, self._serializer_name)
        keys = None if unique_key is None else _checked_keys([unique_key], 1, "push_task")
        if group_key is not None:
            groups = grouping.checked_groups(group_key, 1, "push_task", keys)
            return self._push_grouped(
                checked, task_name, priority, consumable_from, trace_id, groups
            )[0]
        return self._push(checked, task_name, priority, consumable_from, trace_id, keys)[0]

    def push_tasks(
        self,
        kwargs_list: typing.Iterable[dict[str, typing.Any]],
        task_name: str | None = None,
        priority: Priority = "NORMAL",
        consumable_from: float | None = None,
        trace_id: str | None = None,
        unique_keys: typing.Sequence[str | None] | None = None,
        group_keys: typing.Sequence[str | None] | str | None = None,
        group_key: typing.Sequence[str | None] | str | None = None,
    ) -> list[str]:
        """Push many tasks in one batch; returns their ids in order (see ``push_task``).

        Nothing is pushed when an item is refused; the error names its index.
        ``unique_keys`` gives one key (or None) per task, as ``push_task``'s
        ``unique_key``; each returned id is then that of the task holding the key.
        A later task with the key of an earlier one in the same call is not stored
        and gets the earlier one's id. ``group_keys`` gives one group key (or None)
        per task, as ``push_task``'s ``group_key``, or one str for all of them;
        ``group_key`` is the same argument under ``push_task``'s name.

        Raises:
            ValueError: ``unique_keys`` or ``group_keys`` is not as long as
                ``kwargs_list`` or holds an empty key, or both are given, or both
                ``group_key`` and ``group_keys`` are.
        """
        if group_key is not None:
            if group_keys is not None:
                raise ValueError(
                    "push_tasks: give group_keys or group_key (the same argument), not both"
                )
            group_keys = group_key
        if isinstance(kwargs_list, (dict, str, bytes)):
            raise TypeError(
                f"push_tasks(kwargs_list) is a {type(kwargs_list).__name__}, not a list; pass "
                "one kwargs dict per task, such as [{'id': 7}, {'id': 8}] (or use push_task)"
            )
        kwargs_list = kwargs_list if isinstance(kwargs_list, list) else list(kwargs_list)
        checked = checked_kwargs(
            kwargs_list, "push_tasks(kwargs_list)", True, self._serializer_name
        )
        keys = None
        if unique_keys is not None:
            keys = _checked_keys(unique_keys, len(checked), "push_tasks")
        if group_keys is not None:
            groups = grouping.checked_groups(group_keys, len(checked), "push_tasks", keys)
            return self._push_grouped(
                checked, task_name, priority, consumable_from, trace_id, groups
            )
        return self._push(checked, task_name, priority, consumable_from, trace_id, keys)

    @property
    def _serializer_name(self) -> str:
        return self.config.encoder.serializer

    def _push(
        self,
        kwargs_list: typing.Sequence[dict[str, typing.Any]],
        task_name: str | None,
        priority: Priority,
        consumable_from: float | None,
        trace_id: str | None,
        unique_keys: typing.Sequence[str | None] | None = None,
    ) -> list[str]:
        _check_priority(priority)
        ids = new_task_ids(len(kwargs_list))
        if unique_keys is not None:
            return self.broker.push_new_unique(
                task_name or self.config.name,
                ids,
                kwargs_list,
                unique_keys,
                trace_id or self.get_trace_id(),
                priority,
                consumable_from or 0.0,
            )
        self.broker.push_new(
            task_name or self.config.name,
            ids,
            kwargs_list,
            trace_id or self.get_trace_id(),
            priority,
            consumable_from or 0.0,
        )
        return ids

    def _push_grouped(
        self,
        kwargs_list: typing.Sequence[dict[str, typing.Any]],
        task_name: str | None,
        priority: Priority,
        consumable_from: float | None,
        trace_id: str | None,
        group_keys: typing.Sequence[str | None],
    ) -> list[str]:
        _check_priority(priority)
        ids = new_task_ids(len(kwargs_list))
        self.broker.push_new_grouped(
            task_name or self.config.name,
            ids,
            kwargs_list,
            group_keys,
            trace_id or self.get_trace_id(),
            priority,
            consumable_from or 0.0,
        )
        return ids

    def get_result(
        self, task_id: str, timeout: float | None = None, task_name: str | None = None
    ) -> typing.Any:
        """The value ``work`` returned for ``task_id``, waiting for it if needed.

        The worker that runs the task must keep results
        (``WorkerConfig.result_ttl_seconds > 0``) and share this worker's serializer.
        A dead-lettered task raises ``TaskFailed`` as soon as it is in the dead
        letters of its queue, whatever the workers keep.

        Args:
            task_id: an id returned by ``push_task`` or ``push_tasks``.
            timeout: seconds to wait at most; None waits until the result comes,
                0 looks once. Redis wakes the wait as soon as the result is stored;
                the other brokers poll, backing off to 0.2 s. The dead letters are
                looked at every 0.5 s at most.
            task_name: the queue the task was pushed to; None for this worker's own.

        Raises:
            sergeant.errors.TaskFailed: the task failed, timed out, ran out of
                retries or was dead-lettered; carries the remote exception's type
                and message, or the dead letter's ``reason``.
            sergeant.errors.ResultTimeout: no result within ``timeout``.
        """
        if task_id.startswith(FLOW_PREFIX):
            return self.broker.fetch_flow(self._result_store, task_id, timeout)
        return self._result_store.fetch(task_id, timeout, task_name or self.config.name)


def _check_priority(priority: str) -> None:
    if priority not in ("NORMAL", "HIGH"):
        raise ConfigError(f"priority is {priority!r}; use 'NORMAL' or 'HIGH'")


def _checked_keys(
    unique_keys: typing.Sequence[str | None], count: int, where: str
) -> list[str | None]:
    """The keys as a list, refused unless one per task, each None or a non-empty str."""
    if isinstance(unique_keys, (str, bytes)):
        raise TypeError(f"{where}(unique_keys) is a {type(unique_keys).__name__}; pass a list")
    return grouping.checked_keys(unique_keys, count, where, "unique")
