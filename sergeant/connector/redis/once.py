"""The Redis once push (see ``sergeant.connector._once_contract``): one
``push_once.lua`` call marks the key (``SET NX PX``, beside the queue's keys under
its hash tag, so a cluster runs it on the queue's slot) and appends the entry as
``push.lua`` appends a ready one. On several independent servers the key and its
entry go to the server the key hashes to (``_unique.member_of``), which every
consumer visits."""

from __future__ import annotations

import importlib.resources
import math

import redis.commands.core

from sergeant.connector import _once_contract, _unique
from sergeant.connector.base import Priority
from sergeant.connector.redis import entries, keys
from sergeant.connector.redis._nodeset import NodeSet
from sergeant.connector.redis.scripts import WAKE_TOKENS, with_lib

__all__ = ["Once", "once_mark"]

_LUA = importlib.resources.files("sergeant.connector.redis") / "lua"
#: The script: the shared prelude of the queue scripts, then ``push_once.lua``.
SOURCE = with_lib((_LUA / "push_once.lua").read_text("utf-8"))


def once_mark(tag: str, once_key: str) -> str:
    """The string marking ``once_key`` used on a queue, under its hash tag ``{tag}``
    (the queue's name, or on a sharded cluster its shard's tag)."""
    return f"{keys.PREFIX}:{{{tag}}}:once:{once_key}"


class Once(NodeSet):
    """``push_once`` of ``sergeant.connector.redis.Connector``."""

    def push_once(
        self,
        queue: str,
        item: bytes,
        once_key: str,
        keep_seconds: float,
        priority: Priority = "NORMAL",
    ) -> bool:
        """See :meth:`sergeant.connector.Connector.push_once` (one ``push_once.lua`` call)."""
        _once_contract.check(keep_seconds, priority)
        self._record_shards(queue)
        nodes = self._all()
        node = nodes[_unique.member_of(queue, once_key, len(nodes))]
        entry = entries.make_entries(self._ids, priority[0].encode(), [item])[0]
        names = [*node.queue_keys(queue), once_mark(node.tag(queue), once_key)]
        args: list[bytes | int] = [max(1, math.ceil(keep_seconds * 1000)), WAKE_TOKENS, entry]
        with node:
            script: redis.commands.core.Script = node.client.register_script(SOURCE)
            return bool(script(names, args))
