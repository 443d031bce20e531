"""Redis 7 Functions: the connector's Lua scripts as one function library.

On a Redis 7+ server every script of :mod:`~sergeant.connector.redis.scripts` and
:mod:`~sergeant.connector.redis.group_scripts` is also one function of a single
library, built from the very same source text: the shared helpers (``_lib.lua``)
once at the library's top, then each script as a function of its own, registered with
``redis.register_function`` and the flags of its first line
(``allow-oom`` where the script has :data:`~sergeant.connector.redis.scripts.ALLOW_OOM`;
``no-writes`` for the two read-only ones, ``length`` and ``dead_letters``, which like
today's scripts then still run on a full Redis). A script reads ``KEYS`` and ``ARGV``
as globals; here they are the library's locals, which each function sets from its
parameters as it starts, so the body runs unchanged; a queue script's function then
calls ``begin`` as the script's prelude does. The helpers are defined once, at load,
not again at every call as a script's prelude is: that is most of what a small call
costs Redis.

The library's name carries a hash of its whole text (``sergeant_<12 hex>``), and so
does each function's (``sergeant_<12 hex>_lease``): two Sergeant versions sharing one
server load two libraries side by side, and neither replaces the other's. A client
loads it once per node with ``FUNCTION LOAD`` (never ``REPLACE``) when ``FUNCTION
LIST`` does not show it already; "already exists" means another client loaded the
same text meanwhile, which counts as loaded. On a Redis
Cluster it is loaded on every primary (replicas get it by replication).

A call is then ``FCALL <function> numkeys keys... args...``, on the same paths an
EVALSHA takes (the node's lane included, with its head packed once): the server
keeps a library in memory for good, while a script cache entry costs a SHA lookup
per call and goes with ``SCRIPT FLUSH``.

The connector falls back to EVALSHA, deciding once per node and logging it in one
line, when the server has no FUNCTION command (older than 7, or renamed away), when
the ACL user may not load or call functions (NOPERM), or when the load is refused.
An FCALL answered "Function not found" (a restart without persistence, a
``FUNCTION FLUSH``, a failover to a node that lacks it, a new cluster primary) did
not run: the library is loaded again and the call retried.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import typing

import redis
import redis.cluster
import redis.exceptions

__all__ = ["READ_ONLY", "Library", "LibrarySource", "build_library", "not_found"]

logger = logging.getLogger(__name__)

#: Scripts that only read, registered with the ``no-writes`` flag.
READ_ONLY = frozenset({"length", "dead_letters"})

_NAME_PLACEHOLDER = "@LIBRARY@"


class LibrarySource(typing.NamedTuple):
    """The library text and, per script name, its function's name."""

    name: str
    code: str
    functions: dict[str, str]


def _flags(shebang: str) -> list[str]:
    """The flags of a ``#!lua flags=a,b`` line (``''``: none)."""
    for word in shebang.split():
        if word.startswith("flags="):
            return [flag for flag in word[len("flags=") :].split(",") if flag]
    return []


def build_library(sources: typing.Mapping[str, str], lib: str, prelude: str) -> LibrarySource:
    """One library holding a function per script of ``sources`` (name -> full script
    source, flags line included), named after a hash of the whole text.

    A queue script's source is ``prelude`` (``lib``, then the call ``begin(KEYS)``)
    then its body: the library holds ``lib`` once, at its top, and each function
    calls ``begin`` itself, so a call pays for its own body only, not for defining
    the shared helpers again. ``KEYS`` and ``ARGV`` are the library's locals, set by
    each function as it starts (Redis runs one function at a time).
    """
    bodies, registrations = [], []
    for name, source in sorted(sources.items()):
        shebang, body = ("", source)
        if source.startswith("#!"):
            line, _, body = source.partition("\n")
            shebang = line
        queue = body.startswith(prelude)
        if queue:
            body = body[len(prelude) :]
        flags = _flags(shebang)
        if name in READ_ONLY:
            flags.append("no-writes")
        flag_list = ", ".join(f"'{flag}'" for flag in flags)
        bodies.append(f"local function script_{name}()\n{body}\nend\n")
        start = "begin(keys) " if queue else ""
        registrations.append(
            f"redis.register_function{{function_name='{_NAME_PLACEHOLDER}_{name}', "
            f"callback=function(keys, argv) KEYS, ARGV = keys, argv {start}"
            f"return script_{name}() end, flags={{{flag_list}}}}}\n"
        )
    template = "local KEYS, ARGV\n" + lib + "".join(bodies) + "".join(registrations)
    name = "sergeant_" + hashlib.sha1(template.encode()).hexdigest()[:12]
    code = f"#!lua name={name}\n" + template.replace(_NAME_PLACEHOLDER, name)
    return LibrarySource(name, code, {script: f"{name}_{script}" for script in sources})


def not_found(exc: Exception) -> bool:
    """Whether an FCALL was refused because the server lacks the function."""
    return "function not found" in str(exc).lower()


def _refusal(exc: redis.exceptions.ResponseError) -> str | None:
    """Why the server will not run functions for us (None: it will, or it is not a
    refusal of functions as such)."""
    text = str(exc)
    if isinstance(exc, redis.exceptions.NoPermissionError):
        return f"the ACL user may not use functions ({text})"
    lowered = text.lower()
    if "unknown command" in lowered or "unknown subcommand" in lowered:
        return f"the server has no FUNCTION command, Redis older than 7 ({text})"
    return None


class Library:
    """The function library on one client's node (or every primary of its cluster).

    ``active`` is None until the first call decides it: True once the library is
    loaded, False when the node runs the scripts as EVALSHA for good.

    Args:
        client: the client of one server, or a ``RedisCluster``.
        source: the library (see :func:`build_library`).
        address: the node's address, for the log line.
    """

    def __init__(
        self,
        client: redis.Redis | redis.cluster.RedisCluster,
        source: LibrarySource,
        address: str = "",
    ) -> None:
        self._client = client
        self.source = source
        self._address = address
        self._lock = threading.Lock()
        self.active: bool | None = None

    def ready(self) -> bool:
        """Whether calls go as FCALL (the library loaded, at the first call only)."""
        active = self.active
        if active is None:
            with self._lock:
                if self.active is None:
                    self._load()
            active = bool(self.active)
        return active

    def reload(self) -> bool:
        """Load again after "Function not found"; whether calls still go as FCALL."""
        with self._lock:
            if self.active:
                self._load(check=False)
        return bool(self.active)

    def give_up(self, exc: Exception) -> None:
        """Run the scripts as EVALSHA from now on (an FCALL the server refused: NOPERM)."""
        with self._lock:
            if self.active is not False:
                self._fall_back(f"the server refused FCALL ({exc})")

    def _load(self, check: bool = True) -> None:
        """FUNCTION LOAD on the node, or on every primary of the cluster (with the lock);
        with ``check``, only where ``FUNCTION LIST`` does not show it (a short reply
        instead of sending the whole library's text).

        Raises:
            redis.exceptions.RedisError: the node could not be reached (undecided).
        """
        client: typing.Any = self._client  # redis-py leaves these calls untyped
        targets: list[typing.Any] = [None]
        if isinstance(self._client, redis.cluster.RedisCluster):
            targets = list(client.get_primaries())
        name = self.source.name
        for target in targets:
            options = {} if target is None else {"target_nodes": target}
            try:
                if check and client.execute_command(
                    "FUNCTION LIST", "LIBRARYNAME", name, **options
                ):
                    continue  # loaded by an earlier client (the pattern is the exact name)
                client.execute_command("FUNCTION LOAD", self.source.code, **options)
            except redis.exceptions.ResponseError as exc:
                if "already exists" in str(exc):
                    continue  # the same text (its name is its hash): loaded
                why = _refusal(exc) or f"the server refused the function library ({exc})"
                self._fall_back(why)
                return
        self.active = True

    def _fall_back(self, why: str) -> None:
        self.active = False
        logger.warning(
            "Redis at %s: running the scripts as EVALSHA, not as functions: %s",
            self._address or "?",
            why,
            extra={"event": "redis_functions_off"},
        )
