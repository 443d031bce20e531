"""The Redis connector's group scripts (``push_grouped.lua``), loaded per client like
those of :mod:`sergeant.connector.redis.scripts`, and the encoding of the limits a
lease sends (``lease.lua``'s third argument)."""

from __future__ import annotations

import importlib.resources
import typing

from sergeant.connector._records import GroupLimits
from sergeant.connector.redis import scripts
from sergeant.connector.redis.calls import Script
from sergeant.connector.redis.functions import Library
from sergeant.connector.redis.keys import QueueKeys
from sergeant.connector.redis.lane import Lane

__all__ = ["PUSH_GROUPED", "GroupScripts", "encode_limits"]

_LUA = importlib.resources.files("sergeant.connector.redis") / "lua"
#: ``push_grouped.lua``, the prelude in front (also a function of the library).
PUSH_GROUPED = scripts.with_lib((_LUA / "push_grouped.lua").read_text("utf-8"))


def encode_limits(limits: GroupLimits) -> str:
    """``''`` for no bound, else ``'concurrency,rate_tasks,rate_seconds'``."""
    if not limits.concurrency and not limits.rate_tasks:
        return ""
    return f"{int(limits.concurrency)},{int(limits.rate_tasks)},{float(limits.rate_seconds)!r}"


class GroupScripts:
    """The group scripts registered on one client."""

    def __init__(
        self, client: typing.Any, lane: Lane | None = None, library: Library | None = None
    ) -> None:
        self._push_grouped = Script(client, PUSH_GROUPED, lane, library, "push_grouped")

    def push_grouped(
        self, k: QueueKeys, high: bool, eta: float, pairs: typing.Sequence[bytes | str]
    ) -> int:
        """Append the entries of ``pairs`` (entry, group key) to their groups."""
        args: list[scripts.Arg] = [
            repr(float(eta)) if eta > 0 else "0",
            scripts.WAKE_TOKENS,
            "H" if high else "N",
        ]
        return int(self._push_grouped(k, [*args, *pairs]))
