"""Values one can wait for: ``key_set_notify`` and ``wait_for_key`` on Redis.

The writer SETs the value, then pushes one token on the key's notify list (both
expiring with the value); a waiter GETs the value and, while it is missing, BLPOPs
the notify list in slices of at most :data:`WAIT_SLICE_SECONDS`. So a waiter wakes
within milliseconds of the write without polling, and never misses it: each slice
starts with a GET, so a token taken by another waiter (or one pushed before the SET
became visible, on a cluster where the two keys live on different nodes) costs at
most one slice. The two keys may hash to different slots, so the writer uses a
non-transactional pipeline.
"""

from __future__ import annotations

import math
import time

from sergeant.connector.redis import keys
from sergeant.connector.redis.registry import Client

__all__ = ["WAIT_SLICE_SECONDS", "set_and_notify", "wait"]

#: Longest single BLPOP of a wait (seconds); below the client's socket timeout.
WAIT_SLICE_SECONDS = 1.0
#: Shortest BLPOP timeout (seconds): Redis reads a timeout that rounds to 0 ms as "forever".
_MIN_BLOCK_SECONDS = 0.01


def set_and_notify(client: Client, name: str, value: bytes, ttl_seconds: float) -> None:
    """Store ``value`` under key ``name`` for ``ttl_seconds`` and wake its waiters."""
    px = max(1, math.ceil(ttl_seconds * 1000))
    pipe = client.pipeline(transaction=False)
    pipe.set(keys.key(name), value, px=px)
    pipe.rpush(keys.notify(name), b"1")
    pipe.pexpire(keys.notify(name), px)
    pipe.execute()


def wait(client: Client, name: str, timeout_seconds: float | None) -> bytes | None:
    """The value under key ``name``, waiting up to ``timeout_seconds`` (None: forever)."""
    give_up = None if timeout_seconds is None else time.monotonic() + timeout_seconds
    while True:
        value = client.get(keys.key(name))
        if value is not None:
            return value.encode() if isinstance(value, str) else value
        remaining = WAIT_SLICE_SECONDS if give_up is None else give_up - time.monotonic()
        if remaining <= 0:
            return None
        timeout = max(min(remaining, WAIT_SLICE_SECONDS), _MIN_BLOCK_SECONDS)
        client.blpop([keys.notify(name)], timeout=timeout)
