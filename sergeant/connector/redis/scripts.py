"""The Lua scripts of the Redis connector, one typed wrapper per script.

Each ``lua/<name>.lua`` file is one atomic operation; its header documents ARGV,
the return value and the invariants. Queue scripts are loaded with ``lua/_lib.lua``
in front (the key positions and shared steps) and get all of the queue's keys
(:class:`~sergeant.connector.redis.keys.QueueKeys` is their KEYS). On one server a
script is sent as FCALL of the node's function library on Redis 7+
(:mod:`~sergeant.connector.redis.functions`), else as a bare EVALSHA, on the
node's :class:`~sergeant.connector.redis.lane.Lane` when it is free (see
:mod:`~sergeant.connector.redis.calls`); on NOSCRIPT (after a restart or a SCRIPT
FLUSH), and on a cluster without functions, ``register_script``'s object loads
and routes it. A push in a MULTI (a delayed push of more than 2,000 entries)
stays an EVALSHA: redis-py loads the script before the MULTI, so the
transaction never meets a missing script.

A full Redis drains: the scripts that hand out, settle, move or delete what the
queues hold (pop, lease, ack, release, extend, dead_letter, reclaim, purge, purge_dead,
requeue_dead, remove_waiting, the lock and worker-registry ones) begin with
:data:`ALLOW_OOM`, so Redis 7+ runs them above ``maxmemory``; what they write
(a lease record, a heartbeat) is small beside what they free. ``requeue_dead``
is among them: it moves dead entries back and drops their records, adding
nothing. Push, push_unique and the flow scripts (which push) are not, so a full
Redis refuses new tasks (``BrokerFull``), and so are the read-only scripts, which
never need it. A server older than 7 reads the flag line as Lua and refuses to
load it: the script then falls back to its source without that line, once per
script and client.
"""

from __future__ import annotations

import importlib.resources
import typing

import redis
import redis.client
import redis.cluster
import redis.commands.core

from sergeant.connector.redis import lease_script
from sergeant.connector.redis.calls import (
    Arg,
    Script,
    shebang_refused,
    split_shebang,
    without_shebang,
)
from sergeant.connector.redis.cluster_lanes import ClusterLanes
from sergeant.connector.redis.functions import Library
from sergeant.connector.redis.keys import QueueKeys
from sergeant.connector.redis.lane import Lane
from sergeant.connector.redis.lease_script import LeaseRequest

__all__ = [
    "ALLOW_OOM",
    "LIB",
    "PRELUDE",
    "RECLAIM_BATCH",
    "TOKEN_BLOCK",
    "WAKE_TOKENS",
    "Arg",
    "Scripts",
    "shebang_refused",
    "with_lib",
    "without_shebang",
]

#: Most wake tokens kept per queue: how many blocked leases one push can wake.
WAKE_TOKENS = 16
#: Most expired leases one reclaim script call handles, so it never blocks Redis long.
RECLAIM_BATCH = 1000
#: Fencing tokens a client reserves at once (one INCRBY per this many leasing calls).
TOKEN_BLOCK = 4096


_QUEUE_SCRIPTS = (
    "push",
    "push_unique",
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
    "remove_waiting",
    "charge",
    "extend_owned",
    "release_owned",
    "flow_hold",
    "flow_advance",
)
_LOCK_SCRIPTS = ("lock_release", "lock_set_ttl", "reserve_tokens")
#: The first line of a script that Redis 7+ runs even when it is out of memory.
ALLOW_OOM = "#!lua flags=allow-oom"


def with_lib(source: str) -> str:
    """The shared prelude in front of a queue script, after its flags line (which
    Redis reads only as the very first line)."""
    shebang, body = split_shebang(source)
    return shebang + PRELUDE + body


_LUA = importlib.resources.files("sergeant.connector.redis") / "lua"
#: ``lua/_lib.lua``: the helpers every queue script shares.
LIB = (_LUA / "_lib.lua").read_text("utf-8")
#: What a queue script begins with when it runs as a script: the helpers, then the
#: call that sets up this call (the function library holds LIB once instead).
PRELUDE = LIB + "begin(KEYS)\n"
SOURCES: dict[str, str] = {
    **{name: with_lib((_LUA / f"{name}.lua").read_text("utf-8")) for name in _QUEUE_SCRIPTS},
    **{name: (_LUA / f"{name}.lua").read_text("utf-8") for name in _LOCK_SCRIPTS},
}


class Scripts:
    """The scripts registered on one client; each method runs one script.

    Args:
        client: the client of one node, or the ``RedisCluster`` client of a cluster
            (which sends each EVALSHA to the node owning its first key's slot, and
            SCRIPT LOAD to every primary).
        lane: the dedicated connection of a single server, tried first.
        library: the node's function library (Redis 7+): FCALL when it is loaded.
    """

    def __init__(
        self,
        client: redis.Redis | redis.cluster.RedisCluster,
        lane: Lane | None = None,
        library: Library | None = None,
        cluster_lanes: ClusterLanes | None = None,
    ) -> None:
        s = {
            name: Script(client, source, lane, library, name, cluster_lanes)
            for name, source in SOURCES.items()
        }
        self._push, self._pop, self._lease = s["push"], s["pop"], s["lease"]
        self._push_unique = s["push_unique"]
        self._ack, self._release, self._extend = s["ack"], s["release"], s["extend"]
        self._dead_letter, self._reclaim = s["dead_letter"], s["reclaim"]
        self._length, self._purge = s["length"], s["purge"]
        self._dead_letters, self._requeue_dead = s["dead_letters"], s["requeue_dead"]
        # remove_waiting's typed wrapper is ``_waiting.remove_entries`` (off the hot path).
        self._purge_dead, self.remove_waiting = s["purge_dead"], s["remove_waiting"]
        self._charge, self._extend_owned = s["charge"], s["extend_owned"]
        self._release_owned = s["release_owned"]
        self._lock_release, self._lock_set_ttl = s["lock_release"], s["lock_set_ttl"]
        self._reserve_tokens = s["reserve_tokens"]
        self._flow_hold, self._flow_advance = s["flow_hold"], s["flow_advance"]

    def push(
        self,
        k: QueueKeys,
        high: bool,
        eta: float,
        entries: typing.Sequence[bytes],
        pipe: redis.client.Pipeline | None = None,
        wake: bool = True,
    ) -> int:
        """Append ``entries`` to one priority; queued on ``pipe`` when given (returns 0).

        ``wake=False`` adds no wake tokens (a later part of one push in one MULTI/EXEC).
        """
        cap = WAKE_TOKENS if wake else 0
        args: list[Arg] = [repr(float(eta)) if eta > 0 else "0", cap, "H" if high else "N"]
        args += entries
        if pipe is not None:
            self._push.registered(k, args, client=pipe)
            return 0
        return int(self._push(k, args))

    def push_unique(
        self, k: QueueKeys, high: bool, eta: float, triples: typing.Sequence[Arg]
    ) -> list[str]:
        """Append the entries of ``triples`` (entry, key or ``''``, task id) whose key
        is free; per triple, the task id holding its key."""
        args: list[Arg] = [repr(float(eta)) if eta > 0 else "0", WAKE_TOKENS, "H" if high else "N"]
        holders: list[bytes | str] = self._push_unique(k, [*args, *triples])
        return [h.decode() if isinstance(h, bytes) else h for h in holders]

    def pop(self, k: QueueKeys, count: int) -> list[bytes]:
        """Remove and return up to ``count`` ready entries."""
        result: list[bytes] = self._pop(k, (count,))
        return result

    def lease(self, k: QueueKeys, request: LeaseRequest) -> list[typing.Any]:
        """Acknowledge ``request.acks`` (token, slots pairs), then lease up to
        ``request.most`` entries under ``request.token``.

        Returns ``[-1, acknowledged, token, [entry, ...]]``, ``[-2, acknowledged]``
        when the server no longer knows the token's block, or ``[wait_ms,
        acknowledged]`` with nothing to hand out (see ``lua/lease.lua`` and
        :mod:`~sergeant.connector.redis.lease_script`).
        """
        return lease_script.lease(self._lease, k, request)

    def start_pop(self, k: QueueKeys, count: int) -> typing.Callable[[], list[bytes]]:
        """:meth:`pop`, sent now; the function returned reads its reply."""
        return self._pop.start(k, (count,))

    def start_lease(
        self, k: QueueKeys, request: LeaseRequest
    ) -> typing.Callable[[], list[typing.Any]]:
        """:meth:`lease`, sent now; the function returned reads its reply."""
        return lease_script.start_lease(self._lease, k, request)

    def reserve_tokens(self, k: QueueKeys, count: int = TOKEN_BLOCK) -> int:
        """Reserve ``count`` fencing tokens of ``k``; returns the last of them."""
        return int(self._reserve_tokens((k.lease_seq, k.leases), (count,)))

    def ack(self, k: QueueKeys, pairs: typing.Sequence[Arg]) -> int:
        """Acknowledge the held entries among ``pairs`` (token, slots); count them."""
        return int(self._ack(k, pairs))

    def release(self, k: QueueKeys, pairs: typing.Sequence[Arg]) -> int:
        """Release the held entries among ``pairs`` (token, slots); count them."""
        return int(self._release(k, (WAKE_TOKENS, *pairs)))

    def extend(self, k: QueueKeys, pairs: typing.Sequence[Arg], lease_seconds: float) -> int:
        """Extend the batches holding entries among ``pairs``; count the held entries."""
        return int(self._extend(k, (repr(float(lease_seconds)), *pairs)))

    def dead_letter(
        self, k: QueueKeys, pairs: typing.Sequence[Arg], reason: str, error: str
    ) -> int:
        """Dead-letter the held entries among ``pairs`` (token, slots); count them."""
        return int(self._dead_letter(k, (reason, error, *pairs)))

    def charge(
        self,
        k: QueueKeys,
        pairs: typing.Sequence[Arg],
        max_deliveries: int,
        reason: str,
        error: str,
    ) -> tuple[int, int]:
        """Charge the held entries among ``pairs``: ``(requeued, dead_lettered)``."""
        requeued, dead = self._charge(k, (max_deliveries, reason, error, WAKE_TOKENS, *pairs))
        return int(requeued), int(dead)

    def extend_owned(self, k: QueueKeys, owner: str, lease_seconds: float) -> int:
        """Extend every batch ``owner`` holds; count its held entries."""
        return int(self._extend_owned(k, (repr(float(lease_seconds)), owner)))

    def release_owned(self, k: QueueKeys, owner: str) -> int:
        """Release every entry ``owner`` holds; count them."""
        return int(self._release_owned(k, (WAKE_TOKENS, owner)))

    def reclaim(self, k: QueueKeys, max_deliveries: int) -> tuple[int, int, bool]:
        """Reclaim expired batches, about :data:`RECLAIM_BATCH` entries at most.

        Returns:
            ``(requeued, dead_lettered, more)``; ``more`` is True when expired
            batches may remain.
        """
        requeued, dead, more = self._reclaim(k, (max_deliveries, RECLAIM_BATCH, WAKE_TOKENS))
        return int(requeued), int(dead), bool(more)

    def length(self, k: QueueKeys, include_delayed: bool) -> int:
        """Ready entries (due delayed included), plus not-yet-due ones when asked."""
        return int(self._length(k, ("1" if include_delayed else "0",)))

    def purge(self, k: QueueKeys) -> int:
        """Delete ready and delayed entries; returns how many."""
        return int(self._purge(k, ()))

    def dead_letters(self, k: QueueKeys, limit: int) -> list[bytes]:
        """Up to ``limit`` dead entries as ``[entry, json_info, ...]``."""
        result: list[bytes] = self._dead_letters(k, (limit,))
        return result

    def requeue_dead(self, k: QueueKeys, limit: int) -> int:
        """Move up to ``limit`` (0 = all) dead entries to the tail of NORMAL."""
        return int(self._requeue_dead(k, (limit, WAKE_TOKENS)))

    def purge_dead(self, k: QueueKeys) -> int:
        """Delete every dead entry; returns how many."""
        return int(self._purge_dead(k, ()))

    def flow_hold(self, k: QueueKeys, node: str, needed: int, ttl_ms: int, entry: bytes) -> None:
        """Hold ``entry`` (``b''``: none) in flow node ``node`` until ``needed`` members."""
        self._flow_hold((*k, node), (needed, ttl_ms, WAKE_TOKENS, entry))

    def flow_advance(self, k: QueueKeys, node: str, member: int, value: bytes, ms: int) -> bool:
        """Record ``member``'s ``value`` in ``node``; True once the node is released."""
        return bool(self._flow_advance((*k, node), (member, value, ms, WAKE_TOKENS)))

    def lock_release(self, key: str, token: str) -> bool:
        """Delete lock ``key`` if ``token`` owns it."""
        return bool(self._lock_release((key,), (token,)))

    def lock_set_ttl(self, key: str, token: str, ttl_ms: int) -> bool:
        """Set the TTL of lock ``key`` if ``token`` owns it."""
        return bool(self._lock_set_ttl((key,), (token, ttl_ms)))
