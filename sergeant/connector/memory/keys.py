"""The memory connector's plain keys, locks and live-worker registry."""

from __future__ import annotations

import time

from sergeant.connector.memory import steps
from sergeant.connector.memory.access import StoreAccess
from sergeant.connector.memory.lock import Lock
from sergeant.connector.memory.store import Store

__all__ = ["KeysAndWorkers"]


class KeysAndWorkers(StoreAccess):
    """The keys, locks and workers part of the memory connector's contract."""

    def key_set(self, key: str, value: bytes, ttl_seconds: float | None = None) -> None:
        """See :meth:`sergeant.connector.Connector.key_set`."""
        self.key_set_notify(key, value, ttl_seconds)

    def key_set_notify(self, key: str, value: bytes, ttl_seconds: float | None) -> None:
        """See :meth:`sergeant.connector.Connector.key_set_notify`."""

        def put(data: Store) -> None:
            expires_at = None if ttl_seconds is None else time.time() + ttl_seconds
            data.keys[key] = (bytes(value), expires_at)
            data.cond.notify_all()

        self._locked(put)

    def key_get(self, key: str) -> bytes | None:
        """See :meth:`sergeant.connector.Connector.key_get`."""
        return self._locked(lambda data: steps.live_key(data, key))

    def key_delete(self, key: str) -> bool:
        """See :meth:`sergeant.connector.Connector.key_delete`."""

        def delete(data: Store) -> bool:
            alive = steps.live_key(data, key) is not None
            data.keys.pop(key, None)
            return alive

        return self._locked(delete)

    def wait_for_key(self, key: str, timeout_seconds: float | None) -> bytes | None:
        """See :meth:`sergeant.connector.Connector.wait_for_key`; no polling."""

        def wait(data: Store) -> bytes | None:
            give_up = None if timeout_seconds is None else time.monotonic() + timeout_seconds
            while (value := steps.live_key(data, key)) is None:
                remaining = None if give_up is None else give_up - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                data.cond.wait(remaining)
            return value

        return self._locked(wait)

    def lock(self, name: str) -> Lock:
        """See :meth:`sergeant.connector.Connector.lock`."""
        return Lock(self._store, name)

    def register_worker(self, worker_id: str, info: bytes, ttl_seconds: float) -> None:
        """See :meth:`sergeant.connector.Connector.register_worker`."""

        def register(data: Store) -> None:
            data.workers[worker_id] = (bytes(info), time.time() + ttl_seconds)

        self._locked(register)

    def unregister_worker(self, worker_id: str) -> bool:
        """See :meth:`sergeant.connector.Connector.unregister_worker`."""

        def unregister(data: Store) -> bool:
            entry = data.workers.pop(worker_id, None)
            return entry is not None and entry[1] > time.time()

        return self._locked(unregister)

    def workers(self) -> list[bytes]:
        """See :meth:`sergeant.connector.Connector.workers`."""

        def live(data: Store) -> list[bytes]:
            now = time.time()
            for worker_id in [w for w, (_, until) in data.workers.items() if until <= now]:
                del data.workers[worker_id]
            return [info for info, _ in data.workers.values()]

        return self._locked(live)
