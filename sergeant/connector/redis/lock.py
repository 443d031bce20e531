"""Redis locks: ``SET NX PX`` with a fresh owner token; release and TTL changes in Lua."""

from __future__ import annotations

import typing
import uuid

from sergeant.connector import base
from sergeant.connector.redis import keys
from sergeant.connector.redis.nodes import Node

__all__ = ["Lock"]


class Lock(base.Lock):
    """A Redis lock: ``SET NX PX`` with a fresh owner token, compare-and-act in Lua.

    Args:
        name: the lock's name.
        node_for: gives the node holding a name (by CRC32, see ``keys.node_index``);
            asked on every call so a forked child uses its own connections.
    """

    def __init__(self, name: str, node_for: typing.Callable[[str], Node]) -> None:
        super().__init__(name)
        self._node_for = node_for
        self._key = keys.lock(name)

    def _try_acquire(self, ttl: int) -> bool:
        token = uuid.uuid4().hex
        node = self._node_for(self.name)
        with node:
            taken = node.client.set(self._key, token, nx=True, px=max(1, int(ttl * 1000)))
        if taken:
            self.token = token
        return bool(taken)

    def release(self) -> bool:
        """Free the lock if this object holds it; True if it did."""
        if self.token is None:
            return False
        node = self._node_for(self.name)
        with node:
            released = node.scripts.lock_release(self._key, self.token)
        self.token = None
        return released

    def is_locked(self) -> bool:
        """Whether anyone holds the lock now."""
        node = self._node_for(self.name)
        with node:
            return bool(node.client.exists(self._key))

    def set_ttl(self, ttl: int) -> bool:
        """Make the lock expire ``ttl`` seconds from now if this object holds it (0 frees it)."""
        if self.token is None:
            return False
        node = self._node_for(self.name)
        with node:
            # Not clamped: PEXPIRE with 0 or less deletes the key, 0.27's EXPIRE 0 behaviour.
            return node.scripts.lock_set_ttl(self._key, self.token, int(ttl * 1000))

    def get_ttl(self) -> int | None:
        """Seconds (rounded up) until the lock expires; None when nobody holds it."""
        node = self._node_for(self.name)
        with node:
            pttl = int(node.client.pttl(self._key))
        # -2: no such key; -1: a key without expiry (set outside Sergeant), no TTL to give.
        if pttl < 0:
            return None
        return -(-pttl // 1000)
