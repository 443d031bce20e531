"""Fencing tokens chosen by the client, so a lease call can be repeated safely.

A lease's fencing token used to come from the server (INCR in the script), so a call
whose reply was lost (a socket timeout during a stall, a dropped connection) left a
batch nobody knew of until its lease expired, and the retry leased another one. Now
each client reserves a block of :data:`~sergeant.connector.redis.scripts.TOKEN_BLOCK`
tokens of a queue's never-reset counter (one INCRBY) and gives every lease call one
of them. A call that raised is *unanswered*: its token is used again by the next
lease call of that queue on that node, and ``lease.lua`` answers a token it already
holds with the same batch and acknowledgement count, so the retry gets exactly what
the lost reply carried.

A token above the server's counter means the server lost its data (a restart without
persistence): the script refuses it before doing anything, the block is dropped, and
a fresh one is reserved above every token this client used, so its own stale leases
stay fenced off (those of clients that have not noticed yet may not be: a server that
loses its data loses the fencing of the leases it held).
"""

from __future__ import annotations

import collections
import functools
import itertools
import logging
import threading
import typing

from sergeant.connector.redis.keys import QueueKeys
from sergeant.connector.redis.lease_script import LeaseRequest
from sergeant.connector.redis.scripts import TOKEN_BLOCK, Arg

if typing.TYPE_CHECKING:
    from sergeant.connector.redis.nodes import Node

__all__ = ["Tokens", "lease_on", "start_lease_on"]

logger = logging.getLogger("sergeant.connector.redis")

#: ``lease.lua``'s first reply item when its token is above the server's counter.
UNKNOWN_TOKEN = -2


class Tokens:
    """The fencing tokens of one node's queues for this client (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Counter key -> (the next tokens of this client's block, its last one).
        self._blocks: dict[str, tuple[itertools.count[int], int]] = {}
        self._unanswered: dict[str, collections.deque[int]] = {}
        # Counter key -> the last token of a block the server forgot: new ones go above.
        self._floor: dict[str, int] = {}

    def take(self, node: Node, k: QueueKeys) -> int:
        """The token of the next lease call: an unanswered one first, else a fresh one."""
        key = k.lease_seq
        again = self._unanswered.get(key)
        if again:
            try:
                return again.popleft()  # GIL-atomic: no lock on the hot path
            except IndexError:
                pass
        block = self._blocks.get(key)
        if block is not None:
            token = next(block[0])  # itertools.count: GIL-atomic as well
            if token <= block[1]:
                return token
        with self._lock, node:
            last = node.scripts.reserve_tokens(k)
            floor = self._floor.get(key, 0)
            if last - TOKEN_BLOCK < floor:  # never repeat a token this client used
                last = node.scripts.reserve_tokens(k, floor + TOKEN_BLOCK - last)
            self._blocks[key] = (itertools.count(last - TOKEN_BLOCK + 2), last)
        return last - TOKEN_BLOCK + 1

    def unanswered(self, k: QueueKeys, token: int) -> None:
        """The call with ``token`` raised: it may have run, so its token is used again."""
        with self._lock:
            self._unanswered.setdefault(k.lease_seq, collections.deque()).append(token)

    def forget(self, node: Node, k: QueueKeys) -> None:
        """The server no longer knows this block (it lost its data): reserve a new one."""
        with self._lock:
            block = self._blocks.pop(k.lease_seq, None)
            self._unanswered.pop(k.lease_seq, None)
            if block is not None:
                self._floor[k.lease_seq] = max(block[1], self._floor.get(k.lease_seq, 0))
        if block is not None:
            logger.warning(
                "Redis at %s no longer knows the lease tokens of %s (its lease counter went "
                "back: it restarted without its data?); the leases taken before are gone",
                node.address,
                k.lease_seq,
                extra={"event": "broker_lost_data"},
            )


_R = typing.TypeVar("_R")


def _under_token(node: Node, k: QueueKeys, token: int, call: typing.Callable[[], _R]) -> _R:
    """``call()`` inside ``node``'s error boundary; if it raises, ``token`` is unanswered."""
    try:
        with node:
            return call()
    except BaseException:
        node.tokens.unanswered(k, token)
        raise


def lease_on(
    node: Node,
    k: QueueKeys,
    count: int,
    lease_seconds: float,
    owner: str,
    acks: typing.Sequence[Arg],
) -> list[typing.Any]:
    """One ``lease.lua`` call on ``node`` under a client token; see the module docstring."""
    for _ in range(2):  # a second time only after the server lost the block
        token = node.tokens.take(node, k)
        limits = node.group_limits.get(k.leases, "") if node.group_limits else ""
        request = LeaseRequest(count, lease_seconds, owner, token, acks, limits)
        reply = _under_token(node, k, token, functools.partial(node.scripts.lease, k, request))
        if reply[0] != UNKNOWN_TOKEN:
            return reply
        node.tokens.forget(node, k)
    return reply


def start_lease_on(
    node: Node,
    k: QueueKeys,
    count: int,
    lease_seconds: float,
    owner: str,
    acks: typing.Sequence[Arg],
) -> typing.Callable[[], list[typing.Any]]:
    """:func:`lease_on`, sent now; the function returned reads the reply (once)."""
    token = node.tokens.take(node, k)
    limits = node.group_limits.get(k.leases, "") if node.group_limits else ""
    request = LeaseRequest(count, lease_seconds, owner, token, acks, limits)
    finish = _under_token(node, k, token, lambda: node.scripts.start_lease(k, request))

    def read() -> list[typing.Any]:
        reply = _under_token(node, k, token, finish)
        if reply[0] == UNKNOWN_TOKEN:
            node.tokens.forget(node, k)
        return reply

    return read
