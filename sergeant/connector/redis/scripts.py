"""The Lua scripts of the Redis connector, one typed wrapper per script.

Each ``lua/<name>.lua`` file is one atomic operation; its header documents KEYS,
ARGV, the return value and the invariants. The sources are read once at import
(``importlib.resources``) and registered per client with ``register_script``, which
calls EVALSHA and loads the script again on NOSCRIPT (after a restart or a SCRIPT
FLUSH). Wrappers take the queue's :class:`~sergeant.connector.redis.keys.QueueKeys`
and pass each script only the keys its header lists.
"""

from __future__ import annotations

import importlib.resources
import typing

import redis
import redis.client
import redis.cluster
import redis.commands.core

from sergeant.connector.redis.keys import QueueKeys

__all__ = ["WAKE_TOKENS", "Scripts"]

#: Most wake tokens kept per queue: how many blocked leases one push can wake.
WAKE_TOKENS = 16
#: Most expired leases one reclaim script call handles, so it never blocks Redis long.
RECLAIM_BATCH = 1000

_NAMES = (
    "push",
    "pop",
    "lease",
    "ack",
    "release",
    "extend",
    "dead_letter",
    "reclaim",
    "length",
    "purge",
    "dead_letters",
    "requeue_dead",
    "purge_dead",
    "lock_release",
    "lock_set_ttl",
)
_LUA = importlib.resources.files("sergeant.connector.redis") / "lua"
SOURCES: dict[str, str] = {name: (_LUA / f"{name}.lua").read_text("utf-8") for name in _NAMES}

#: What redis-py accepts as a script argument.
Arg = bytes | str | int | float


class Scripts:
    """The scripts registered on one client; each method runs one script.

    Args:
        client: the client of one node, or the ``RedisCluster`` client of a cluster
            (which sends each EVALSHA to the node owning its first key's slot, and
            SCRIPT LOAD to every primary).
    """

    def __init__(self, client: redis.Redis | redis.cluster.RedisCluster) -> None:
        register = client.register_script
        self._push = register(SOURCES["push"])
        self._pop = register(SOURCES["pop"])
        self._lease = register(SOURCES["lease"])
        self._ack = register(SOURCES["ack"])
        self._release = register(SOURCES["release"])
        self._extend = register(SOURCES["extend"])
        self._dead_letter = register(SOURCES["dead_letter"])
        self._reclaim = register(SOURCES["reclaim"])
        self._length = register(SOURCES["length"])
        self._purge = register(SOURCES["purge"])
        self._dead_letters = register(SOURCES["dead_letters"])
        self._requeue_dead = register(SOURCES["requeue_dead"])
        self._purge_dead = register(SOURCES["purge_dead"])
        self._lock_release = register(SOURCES["lock_release"])
        self._lock_set_ttl = register(SOURCES["lock_set_ttl"])

    def push(
        self,
        k: QueueKeys,
        high: bool,
        eta: float,
        payloads: typing.Sequence[bytes],
        pipe: redis.client.Pipeline | None = None,
    ) -> int:
        """Append ``payloads`` to one priority; queued on ``pipe`` when given (returns 0)."""
        keys = (
            k.seq,
            k.items,
            k.high if high else k.normal,
            k.delayed_high if high else k.delayed_normal,
            k.wake,
        )
        args: list[Arg] = [repr(float(eta)) if eta > 0 else "0", WAKE_TOKENS, "H" if high else "N"]
        args += payloads
        if pipe is not None:
            self._push(keys, args, client=pipe)
            return 0
        return int(self._push(keys, args))

    def pop(self, k: QueueKeys, count: int) -> list[bytes]:
        """Remove and return up to ``count`` ready payloads."""
        keys = (k.high, k.normal, k.delayed_high, k.delayed_normal, k.items, k.deliveries)
        result: list[bytes] = self._pop(keys, (count,))
        return result

    def lease(self, k: QueueKeys, count: int, lease_seconds: float) -> list[typing.Any]:
        """Lease up to ``count`` items: ``[-1, token, id, payload, deliveries, ...]``.

        With nothing to hand out: ``[wait_ms]`` (see ``lua/lease.lua``).
        """
        keys = (
            k.high,
            k.normal,
            k.delayed_high,
            k.delayed_normal,
            k.items,
            k.deliveries,
            k.leased,
            k.wake,
            k.leases,
        )
        result: list[typing.Any] = self._lease(keys, (count, repr(float(lease_seconds))))
        return result

    def ack(self, k: QueueKeys, members: list[str]) -> int:
        """Acknowledge the held leases among ``members`` (lease members); count them."""
        return int(self._ack((k.leased, k.items), members))

    def release(self, k: QueueKeys, members: list[str]) -> int:
        """Release the held leases among ``members`` (lease members); count them."""
        keys = (k.leased, k.deliveries, k.high, k.normal, k.wake)
        args: list[Arg] = [WAKE_TOKENS, *members]
        return int(self._release(keys, args))

    def extend(self, k: QueueKeys, members: list[str], lease_seconds: float) -> int:
        """Extend the held leases among ``members`` (lease members); count them."""
        args: list[Arg] = [repr(float(lease_seconds)), *members]
        return int(self._extend((k.leased,), args))

    def dead_letter(self, k: QueueKeys, members: list[str], reason: str, error: str) -> int:
        """Dead-letter the held leases among ``members`` (lease members); count them."""
        keys = (k.leased, k.dead, k.dead_info)
        return int(self._dead_letter(keys, [reason, error, *members]))

    def reclaim(self, k: QueueKeys, max_deliveries: int) -> tuple[int, int, bool]:
        """Reclaim up to :data:`RECLAIM_BATCH` expired leases.

        Returns:
            ``(requeued, dead_lettered, more)``; ``more`` is True when the batch was
            full, so more expired leases may remain.
        """
        keys = (k.leased, k.deliveries, k.high, k.normal, k.dead, k.dead_info, k.wake)
        requeued, dead, seen = self._reclaim(keys, (max_deliveries, RECLAIM_BATCH, WAKE_TOKENS))
        return int(requeued), int(dead), int(seen) >= RECLAIM_BATCH

    def length(self, k: QueueKeys, include_delayed: bool) -> int:
        """Ready items (due delayed included), plus not-yet-due ones when asked."""
        keys = (k.high, k.normal, k.delayed_high, k.delayed_normal)
        return int(self._length(keys, ("1" if include_delayed else "0",)))

    def purge(self, k: QueueKeys) -> int:
        """Delete ready and delayed items; returns how many."""
        keys = (
            k.high,
            k.normal,
            k.delayed_high,
            k.delayed_normal,
            k.items,
            k.deliveries,
            k.leased,
            k.dead,
        )
        return int(self._purge(keys, ()))

    def dead_letters(self, k: QueueKeys, limit: int) -> list[bytes]:
        """Up to ``limit`` dead items as ``[id, payload, json_info, ...]``."""
        result: list[bytes] = self._dead_letters((k.dead, k.dead_info, k.items), (limit,))
        return result

    def requeue_dead(self, k: QueueKeys, limit: int) -> int:
        """Move up to ``limit`` (0 = all) dead items to the tail of NORMAL."""
        keys = (k.dead, k.dead_info, k.deliveries, k.normal, k.wake)
        return int(self._requeue_dead(keys, (limit, WAKE_TOKENS)))

    def purge_dead(self, k: QueueKeys) -> int:
        """Delete every dead item; returns how many."""
        return int(self._purge_dead((k.dead, k.dead_info, k.items, k.deliveries), ()))

    def lock_release(self, key: str, token: str) -> bool:
        """Delete lock ``key`` if ``token`` owns it."""
        return bool(self._lock_release((key,), (token,)))

    def lock_set_ttl(self, key: str, token: str, ttl_ms: int) -> bool:
        """Set the TTL of lock ``key`` if ``token`` owns it."""
        return bool(self._lock_set_ttl((key,), (token, ttl_ms)))
