"""How one Lua script of the Redis connector is sent: FCALL, EVALSHA, or redis-py's.

A :class:`Script` is one script on one client. On a Redis 7+ node whose function
library is loaded (:class:`~sergeant.connector.redis.functions.Library`) it goes
as ``FCALL``; otherwise as a bare EVALSHA (redis-py's ``Script`` wrapper costs a
tenth of a one-by-one round trip). Either way it goes on the node's
:class:`~sergeant.connector.redis.lane.Lane` when the lane is free (the command's
head, with the function name or SHA, the keys and the fixed arguments, packed once
per queue), else on the pool. On NOSCRIPT (after a restart or a SCRIPT FLUSH), and
on a cluster without functions, ``register_script``'s object loads and routes it.

An FCALL answered "Function not found" or refused by the ACL (NOPERM on ``fcall``)
did not run, so it is sent again: after the library is loaded again, or as EVALSHA
once the node has fallen back for good. Any other error reply (one from inside the
script) is raised as before: the script may have written, it is never run twice.

On a cluster with its library loaded, an FCALL goes on the lane of the primary
holding its first key's slot (:mod:`~sergeant.connector.redis.cluster_lanes`) when
that lane is free; one refused with a redirection did not run either, and goes
again through redis-py, which follows it.
"""

from __future__ import annotations

import typing

import redis
import redis.cluster
import redis.exceptions

from sergeant.connector.redis.cluster_lanes import ClusterLanes, redirected
from sergeant.connector.redis.functions import Library, not_found
from sergeant.connector.redis.lane import Arg, Lane, bulk, with_head

__all__ = ["Arg", "Script", "shebang_refused", "split_shebang", "without_shebang"]

#: Most packed command heads (command, sha or function, keys) a script keeps, one per queue.
_HEADS_KEPT = 256


def split_shebang(source: str) -> tuple[str, str]:
    """``(shebang line with its newline, or '', the rest)``."""
    if not source.startswith("#!"):
        return "", source
    line, _, rest = source.partition("\n")
    return line + "\n", rest


def without_shebang(source: str) -> str:
    """``source`` without its flags line: what a Redis older than 7 can load."""
    return split_shebang(source)[1]


def shebang_refused(exc: Exception) -> bool:
    """Whether a Redis older than 7 refused a script for its flags line (it reads it
    as Lua: ``user_script:1: unexpected symbol near '#'``)."""
    text = str(exc)
    return "user_script:1:" in text and "near '#'" in text


def _fcall_refused(exc: Exception) -> bool:
    """Whether the ACL refused the FCALL itself (not a command inside the function)."""
    return isinstance(exc, redis.exceptions.NoPermissionError) and "'fcall'" in str(exc).lower()


class Script:
    """One script on one client: FCALL or a bare EVALSHA on a single server, else redis-py's.

    Args:
        client: the node's client (or the cluster's).
        source: the script's full source (flags line and prelude included).
        lane: the node's lane (None on a cluster).
        library: the node's function library (None: EVALSHA only).
        name: the script's name in the library.
        cluster_lanes: a cluster's lanes, one per primary (None on one server).
    """

    def __init__(
        self,
        client: redis.Redis | redis.cluster.RedisCluster,
        source: str,
        lane: Lane | None,
        library: Library | None = None,
        name: str = "",
        cluster_lanes: ClusterLanes | None = None,
    ) -> None:
        self._client = client
        self._cluster_lanes = cluster_lanes
        self.registered = client.register_script(source)
        # The source to fall back to on a Redis older than 7 (None: no flags line).
        self._plain: str | None = without_shebang(source) if source.startswith("#!") else None
        # redis-py leaves execute_command untyped: name its type here.
        self._execute: typing.Callable[..., typing.Any] | None = None
        self._lane = lane
        self._heads: dict[tuple[Arg, ...], bytes] = {}
        self._library = library
        self._function = library.source.functions[name] if library is not None else ""
        self._fheads: dict[tuple[Arg, ...], bytes] = {}
        if isinstance(client, redis.Redis):
            self._execute = client.execute_command

    def __call__(
        self, keys: typing.Sequence[str], args: typing.Sequence[Arg], fixed: int = 0
    ) -> typing.Any:
        library = self._library
        if library is not None and library.ready():
            try:
                return self._fcall(keys, args, fixed)
            except redis.exceptions.ResponseError as exc:
                if not self._may_resend(exc):
                    raise
            if library.active:
                return self._fcall(keys, args, fixed)
        if self._execute is not None:
            try:
                if self._lane is not None:
                    replies = self._lane.try_send(self._packed(keys, args, fixed))
                    if replies is not None:
                        return replies[0]
                return self._execute("EVALSHA", self.registered.sha, len(keys), *keys, *args)
            except redis.exceptions.NoScriptError:
                pass  # the registered script loads it and runs it
        return self._load_and_run(keys, args)

    def lane_for(self, keys: typing.Sequence[str]) -> Lane | None:
        """The lane a call on ``keys`` may take: the server's, or on a cluster with the
        library loaded the lane of the primary holding the first key's slot."""
        if self._execute is not None:
            return self._lane
        lanes, library = self._cluster_lanes, self._library
        if lanes is None or library is None or not library.ready():
            return None
        return lanes.for_key(keys[0])

    def lane_failed(self, exc: Exception) -> bool:
        """After a call on :meth:`lane_for`'s lane raised ``exc``: whether it did not run
        and may be sent again through :meth:`__call__` (see :meth:`did_not_run`). On a
        cluster a redirection or a broken connection turns the lanes off for a while."""
        lanes = self._cluster_lanes if self._execute is None else None
        if lanes is not None and lanes.after_error(exc):
            return redirected(exc)  # a broken connection: whether it ran is unknown
        return self.did_not_run(exc)

    def packed(
        self, keys: typing.Sequence[str], args: typing.Sequence[Arg], fixed: int = 0
    ) -> bytes:
        """The call as the lane sends it: FCALL when the library is loaded, else EVALSHA."""
        library = self._library
        return self._packed(keys, args, fixed, library is not None and library.ready())

    def did_not_run(self, exc: Exception) -> bool:
        """Whether an error reply of :meth:`packed`'s command means it did not run, so it
        may be sent again through :meth:`__call__` (NOSCRIPT, or see ``_may_resend``)."""
        return isinstance(exc, redis.exceptions.NoScriptError) or self._may_resend(exc)

    def _may_resend(self, exc: Exception) -> bool:
        """After an FCALL's error reply: whether it did not run (then the library is
        loaded again, or the node falls back to EVALSHA, and it may be sent again)."""
        library = self._library
        if library is None:
            return False
        if _fcall_refused(exc):
            library.give_up(exc)
            return True
        if not_found(exc):
            library.reload()
            return True
        return False

    def _fcall(
        self, keys: typing.Sequence[str], args: typing.Sequence[Arg], fixed: int
    ) -> typing.Any:
        """The FCALL, on the lane when it is free, else on the pool (or the cluster)."""
        if self._execute is None:  # a cluster: the lane of the keys' primary, or redis-py
            lane = self.lane_for(keys)
            if lane is not None:
                try:
                    replies = lane.try_send(self._packed(keys, args, fixed, True))
                except redis.exceptions.RedisError as exc:
                    if isinstance(exc, redis.exceptions.ResponseError) and not redirected(exc):
                        raise  # from the script, or no such function: as through redis-py
                    if not self.lane_failed(exc):
                        raise
                    replies = None
                if replies is not None:
                    return replies[0]
            client: typing.Any = self._client  # redis-py leaves these calls untyped
            node = client.get_node_from_key(keys[0])
            return client.execute_command(
                "FCALL", self._function, len(keys), *keys, *args, target_nodes=node
            )
        if self._lane is not None:
            replies = self._lane.try_send(self._packed(keys, args, fixed, True))
            if replies is not None:
                return replies[0]
        return self._execute("FCALL", self._function, len(keys), *keys, *args)

    def _load_and_run(self, keys: typing.Sequence[str], args: typing.Sequence[Arg]) -> typing.Any:
        """Run through redis-py's object, which loads the script when the server lacks
        it; a server that refuses the flags line gets the plain source (it never ran)."""
        try:
            return self.registered(keys, args)
        except redis.exceptions.ResponseError as exc:
            plain = self._plain
            if plain is None or not shebang_refused(exc):
                raise
        self.registered = self._client.register_script(plain)
        self._plain = None
        self._heads.clear()  # they carry the old sha
        return self.registered(keys, args)

    def _packed(
        self,
        keys: typing.Sequence[str],
        args: typing.Sequence[Arg],
        fixed: int = 0,
        function: bool = False,
    ) -> bytes:
        """The EVALSHA (or FCALL) command; its head (sha or function, keys and the
        first ``fixed`` arguments, the same from call to call) is packed once per queue."""
        heads = self._fheads if function else self._heads
        key = (*keys, *args[:fixed])
        head = heads.get(key)
        if head is None:
            if len(heads) >= _HEADS_KEPT:
                heads.clear()
            name = ("FCALL", self._function) if function else ("EVALSHA", self.registered.sha)
            parts: list[Arg] = [*name, len(keys), *keys, *args[:fixed]]
            head = b"".join(map(bulk, parts))
            heads[key] = head
        return with_head(head, 3 + len(keys) + fixed, args[fixed:])

    def start(
        self, keys: typing.Sequence[str], args: typing.Sequence[Arg], fixed: int = 0
    ) -> typing.Callable[[], typing.Any]:
        """Send the script now; the function returned reads its reply (call it once).

        The request is in flight on the lane (several may be, in order) while the
        caller does other work; without a lane (a cluster on EVALSHA, its lanes off)
        the script runs now.
        """
        lane = self.lane_for(keys)
        if lane is None:
            reply = self(keys, args)
            return lambda: reply
        library = self._library
        function = library is not None and library.ready()
        pending = lane.start(self._packed(keys, args, fixed, function))

        def finish() -> typing.Any:
            try:
                return pending.result()
            except redis.exceptions.NoScriptError:
                return self._load_and_run(keys, args)
            except redis.exceptions.RedisError as exc:
                if not function or not self.lane_failed(exc):
                    raise
            return self(keys, args, fixed)  # it did not run: now, on the path decided

        return finish
