"""MongoDB connector: the persistent broker, on one deployment or several independent ones.

The ``url`` form names one deployment (a server, a replica set, a sharded cluster),
served with strict order. In the Sergeant 0.27 ``nodes`` form every entry is a
deployment of its own with its own client, as in 0.27: one entry is one
deployment, several are spread over as independent Redis nodes are (see
``sergeant.connector._spread``; a group lives on one of them, see
``sergeant.connector._spread_groups``). The documents of each deployment are described in
``sergeant.connector.mongo.node``; settings, the client and error wrapping in
``support``; the lock in ``lock``.
"""

from __future__ import annotations

import typing

from pymongo.database import Database

from sergeant.connector._spread import Spread
from sergeant.connector._spread_by_name import member_index
from sergeant.connector._spread_groups import SpreadGroups
from sergeant.connector._spread_once import SpreadOnce
from sergeant.connector.mongo import permits
from sergeant.connector.mongo.lock import Lock
from sergeant.connector.mongo.node import Node
from sergeant.connector.mongo.support import Document, client_handles

__all__ = [
    "Connector",
    "Lock",
]


class Connector(SpreadGroups, SpreadOnce, Spread):
    """Queues, leases, dead letters, keys and locks in MongoDB.

    Args:
        nodes: the Sergeant 0.27 form, ``[{'host': str, 'port': int (default 27017),
            'replica_set': str | None}, ...]``: each entry an independent deployment
            (its replica set, when named, is reached through that host). With
            several, queues are spread over them and order holds per node only.
        url: a ``mongodb://`` (or ``mongodb+srv://``) URI of one deployment, instead
            of ``nodes``; it carries any seed list, replica set and options.
        database: the database holding the collections, on every deployment.

    Raises:
        ConfigError: not exactly one of ``nodes`` and ``url``, a bad node or URI, or
            one ``host:port`` listed twice.
    """

    name = "mongo"
    supports_blocking = False

    def __init__(
        self,
        nodes: list[dict[str, typing.Any]] | None = None,
        url: str | None = None,
        database: str = "sergeant",
    ) -> None:
        handles = client_handles(nodes, url, database)
        super().__init__([Node(handle, index) for index, handle in enumerate(handles)])
        #: The deployments' addresses (a URI with its password masked), for messages.
        self.address = ",".join(handle.address for handle in handles)

    def take_starts(
        self, key: str, tasks: int, window_seconds: float, want: int
    ) -> tuple[int, float]:
        """See :meth:`sergeant.connector.Connector.take_starts`: on the deployment
        holding ``key`` (by name, as keys and locks), one compare-and-set (``permits``)."""
        node = self._members[member_index(key, len(self._members))]
        assert isinstance(node, Node)
        return permits.take_starts(node._database(), node.address, key, tasks, window_seconds, want)

    def _database(self) -> Database[Document]:
        """The first deployment's database, for operator views and tests."""
        node = self._members[0]
        assert isinstance(node, Node)
        return node._database()
