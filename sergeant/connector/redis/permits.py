"""The Redis connector's start permits (see ``_permits_contract``): one script call.

A key's log lives on one node, chosen by name as keys and locks are
(``keys.node_index``), under the hash tag of the key itself, so on a Redis Cluster
the script's two keys share a slot (with the queue's name as the key, the queue's
slot). The clock is the server's ``TIME``: the workers' clocks play no part. ::

    sergeant:{<key>}:starts     list    'at:count' per grant, oldest first
    sergeant:{<key>}:starts:n   string  the sum of their counts

See ``lua/take_starts.lua`` for the step itself. Its script object is made once per
client (kept beside it, weakly); a call is one EVALSHA per batch.
"""

from __future__ import annotations

import importlib.resources
import typing
import weakref

import redis.commands.core

from sergeant.connector import _permits
from sergeant.connector.redis._nodeset import NodeSet
from sergeant.connector.redis.keys import PREFIX

__all__ = ["Permits", "log_keys"]

_SOURCE = (
    importlib.resources.files("sergeant.connector.redis") / "lua" / "take_starts.lua"
).read_text("utf-8")


_SCRIPTS: weakref.WeakKeyDictionary[typing.Any, redis.commands.core.Script] = (
    weakref.WeakKeyDictionary()
)


def log_keys(key: str) -> tuple[str, str]:
    """The log and total of permit key ``key`` (both in the slot of ``{key}``)."""
    log = f"{PREFIX}:{{{key}}}:starts"
    return log, log + ":n"


class Permits(NodeSet):
    """``take_starts`` on the node holding the key."""

    def take_starts(
        self, key: str, tasks: int, window_seconds: float, want: int
    ) -> tuple[int, float]:
        """See :meth:`sergeant.connector.Connector.take_starts`: one Lua script."""
        _permits.check(tasks, window_seconds, want)
        node = self._node_for(key)
        with node:
            script = _SCRIPTS.get(node.client)
            if script is None:
                script = _SCRIPTS[node.client] = node.client.register_script(_SOURCE)
            reply = typing.cast(
                list[typing.Any], script(log_keys(key), [tasks, repr(float(window_seconds)), want])
            )
        return int(reply[0]), float(reply[1])
