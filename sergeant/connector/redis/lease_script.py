"""``lease.lua`` on the wire: its arguments, and its batch read back beside it.

A large lease (at least :data:`LISTED_FROM` entries) on a lane (a single server's,
or on a cluster the lane of the queue's primary: ``cluster_lanes``) moves its
entries into the batch's own list (``keys.batch_list``) inside Redis, and goes out
with an ``LRANGE`` of that list behind it, in the same write: the script answers with
the number of entries only, and the entries come in the LRANGE's reply, written by
Redis straight from the list. The script then never turns the entries into Lua
values and back (about two thirds of what a batch of small entries cost Redis).
Otherwise (a small lease, the pool when the lane is busy, a cluster's lanes off
after a redirection, a reload after NOSCRIPT) the script packs the entries into the
batch's record and puts them in its own reply, as one command is cheaper than three
for a few entries. Both forms hand the caller the same ``[-1, acknowledged, token,
entries]``.
"""

from __future__ import annotations

import contextlib
import typing

import redis.exceptions

from sergeant.connector.redis import keys
from sergeant.connector.redis.lane import Arg, Lane, command

__all__ = ["LEASE_FIXED_ARGS", "LISTED_FROM", "LeaseRequest", "lease", "start_lease"]

#: Fewest entries a lease asks for to take the large form on a lane (its own list,
#: read by the LRANGE behind it); a smaller one is cheaper inline.
LISTED_FROM = 64

#: ``lease.lua``'s leading arguments one worker repeats: lease_seconds, owner, limits
#: and the reply form.
LEASE_FIXED_ARGS = 4


class LeaseRequest(typing.NamedTuple):
    """The arguments of one ``lease.lua`` call (see its header)."""

    most: int
    lease_seconds: float
    owner: str
    token: int
    acks: typing.Sequence[Arg] = ()
    limits: str = ""  # the queue's group limits, encoded (see ``group_scripts``)

    def args(self, inline: bool = True) -> tuple[Arg, ...]:
        """ARGV, in the script's order: the first :data:`LEASE_FIXED_ARGS` are the same
        from call to call of one worker (packed once, see ``calls.Script.packed``);
        ``inline``: the entries come in the script's reply."""
        fixed = (repr(float(self.lease_seconds)), self.owner, self.limits, "1" if inline else "0")
        return (*fixed, self.most, self.token, *self.acks)


class Script(typing.Protocol):
    """What this module needs of ``calls.Script``: its lane, its packing, a call."""

    def lane_for(self, keys: typing.Sequence[str]) -> Lane | None: ...

    def lane_failed(self, exc: Exception) -> bool: ...

    def packed(
        self, keys: typing.Sequence[str], args: typing.Sequence[Arg], fixed: int = 0
    ) -> bytes: ...

    def __call__(
        self, keys: typing.Sequence[str], args: typing.Sequence[Arg], fixed: int = 0
    ) -> typing.Any: ...

    def start(
        self, keys: typing.Sequence[str], args: typing.Sequence[Arg], fixed: int = 0
    ) -> typing.Callable[[], typing.Any]: ...


def _joined(reply: list[typing.Any], entries: list[bytes]) -> list[typing.Any]:
    """The script's count-only reply with the entries the LRANGE read in its place.

    A reply of two items handed nothing out (its -1 is "nothing delayed"); a repeated
    call's reply holds its entries already (see ``lease.lua``).
    """
    if len(reply) > 2 and isinstance(reply[3], int):
        reply[3] = entries
    return reply


def _with_batch_read(script: Script, k: keys.QueueKeys, request: LeaseRequest) -> bytes:
    """The count-only lease and the LRANGE of its batch, packed for one write."""
    packed = script.packed(k, request.args(inline=False), LEASE_FIXED_ARGS)
    return packed + command("LRANGE", keys.batch_list(k, request.token), 0, -1)


def lease(script: Script, k: keys.QueueKeys, request: LeaseRequest) -> list[typing.Any]:
    """Run ``lease.lua`` now; see the module docstring."""
    lane = script.lane_for(k) if request.most >= LISTED_FROM else None
    if lane is not None:
        try:
            replies = lane.try_send(_with_batch_read(script, k, request), 2)
        except redis.exceptions.RedisError as exc:
            if not script.lane_failed(exc):
                raise
            replies = None  # the connection was dropped; the inline form loads it
        if replies is not None:
            return _joined(replies[0], replies[1])
    result: list[typing.Any] = script(k, request.args(), LEASE_FIXED_ARGS)
    return result


def start_lease(
    script: Script, k: keys.QueueKeys, request: LeaseRequest
) -> typing.Callable[[], list[typing.Any]]:
    """Send ``lease.lua`` now; the function returned reads its reply (call it once)."""
    lane = script.lane_for(k) if request.most >= LISTED_FROM else None
    if lane is None:
        return script.start(k, request.args(), LEASE_FIXED_ARGS)
    run, batch = lane.start_all(_with_batch_read(script, k, request), 2)

    def finish() -> list[typing.Any]:
        try:
            reply = run.result()
        except redis.exceptions.RedisError as exc:
            with contextlib.suppress(redis.exceptions.RedisError):
                batch.result()  # read in order (redirected too, or lost with the lease)
            if not script.lane_failed(exc):
                raise
            result: list[typing.Any] = script(k, request.args(), LEASE_FIXED_ARGS)
            return result
        return _joined(reply, batch.result())

    return finish
