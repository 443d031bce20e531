"""The Redis connector's leases: leasing, settling and reclaiming, one script per node.

Items leased on a node form one batch under one fencing token (see ``keys`` and
``tokens``); settling groups deliveries by the node that leased them (``spread``).
"""

from __future__ import annotations

import logging
import time
import typing

from sergeant.connector.base import Delivery, ReclaimResult
from sergeant.connector.redis import keys, shard_record, spread, tokens
from sergeant.connector.redis._nodeset import NodeSet
from sergeant.connector.redis.nodes import Node
from sergeant.connector.redis.scripts import Scripts

__all__ = ["Leasing"]

logger = logging.getLogger("sergeant.connector.redis")

#: A settling script run on one node: (scripts, keys, token/slots pairs) -> count.
_Settle = typing.Callable[[Scripts, keys.QueueKeys, list[str]], int]


class Leasing(NodeSet):
    """Leases and their settling on Redis nodes; see ``Connector`` for the contract."""

    def lease_many(
        self,
        queue: str,
        count: int,
        owner: str,
        lease_seconds: float,
        block_seconds: float = 0.0,
    ) -> list[Delivery]:
        """Lease up to ``count`` ready items as one batch per node (``lease.lua``, no acks).

        Waits as :meth:`ack_and_lease` does when nothing is ready.
        """
        if count <= 0:
            return []
        leased, wait_ms, _ = spread.lease_round(self._rotated(), queue, count, lease_seconds, owner)
        if leased or block_seconds <= 0:
            return leased
        return self._wait_and_lease(queue, count, owner, lease_seconds, block_seconds, wait_ms)

    def ack_and_lease(
        self,
        queue: str,
        acks: typing.Sequence[Delivery],
        count: int,
        owner: str,
        lease_seconds: float,
        block_seconds: float = 0.0,
    ) -> tuple[int, list[Delivery]]:
        """Acknowledge ``acks`` and lease up to ``count`` items, in one script on one node.

        Every node is visited, from a rotating start. Items leased on a node form one
        batch under one fencing token, recorded once (see ``keys``), so the server's
        work per item is one LPOP. An idle blocking lease waits on the wake list (fed
        by push, release and reclaim; on each node in turn when several), never past
        the earliest delayed eta. Each batch records ``owner`` (see ``extend_owned``) and
        a token this client chose (see ``tokens``), so a call repeated after a lost
        reply gets the same batch. With several nodes the items leased are one node's
        batch (the first node with ready items): a worker names its running task by
        slot (``names_running_by``); the acknowledgements of the node visited first go
        in its lease script, the others' first, one script per node (see
        :meth:`_pull_order`).
        """
        if count <= 0:
            return self.ack_many(queue, acks), []
        nodes, acked, pairs = self._pull_order(queue, acks)
        leased, wait_ms, folded = spread.lease_round(
            nodes, queue, count, lease_seconds, owner, pairs, one_batch=True
        )
        acked += folded
        if leased or block_seconds <= 0:
            return acked, leased
        waited = self._wait_and_lease(
            queue, count, owner, lease_seconds, block_seconds, wait_ms, one_batch=True
        )
        return acked, waited

    def _pull_order(
        self, queue: str, acks: typing.Sequence[Delivery]
    ) -> tuple[list[Node], int, list[str]]:
        """A pull's nodes in the order it visits them, how many of ``acks`` were
        acknowledged on other nodes than the first (now, one script per node), and the
        first node's acknowledgements as its lease script takes them.

        With several nodes a pull carrying acknowledgements starts on their node (that
        of the last), so they go in its lease script: one script per pull, not two; but
        one pull in :data:`~sergeant.connector.redis.spread.FOLD_PULLS` starts where the
        rotation does, so every node is visited however long the first stays busy.
        """
        nodes = self._rotated()
        if len(nodes) == 1:
            return nodes, 0, spread.settle_pairs(acks)
        if acks and next(self._pulls) % spread.FOLD_PULLS:
            nodes = spread.home_first(nodes, acks[-1].node)
        first = nodes[0].index
        others = [a for a in acks if a.node != first]
        acked = self.ack_many(queue, others) if others else 0
        mine = [a for a in acks if a.node == first] if others else acks
        return nodes, acked, spread.settle_pairs(mine)

    def _wait_and_lease(
        self,
        queue: str,
        count: int,
        owner: str,
        lease_seconds: float,
        block_seconds: float,
        wait_ms: int,
        one_batch: bool = False,
    ) -> list[Delivery]:
        """The idle part of a blocking lease: wait on the wake list, lease, until the time
        runs out; never past the earliest delayed eta (``wait_ms``, -1 for none)."""
        deadline = time.monotonic() + block_seconds
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            timeout = self._block_slice(remaining)
            if wait_ms >= 0:
                timeout = min(timeout, wait_ms / 1000)
            nodes = self._rotated()
            self._wait_on_wake(nodes[0], queue, timeout)
            leased, wait_ms, _ = spread.lease_round(
                nodes, queue, count, lease_seconds, owner, one_batch=one_batch
            )
            if leased:
                return leased

    def start_ack_and_lease(
        self,
        queue: str,
        acks: typing.Sequence[Delivery],
        count: int,
        owner: str,
        lease_seconds: float,
    ) -> typing.Callable[[], tuple[int, list[Delivery]]]:
        """Send :meth:`ack_and_lease` now; the function returned reads it.

        The lease goes to the pull's first node (:meth:`_pull_order`), in flight on
        its lane, with that node's acknowledgements (the others' are sent first, at
        once); when that node had nothing ready, reading the reply leases on the
        other nodes in turn (one node's batch, as :meth:`ack_and_lease`).
        """
        if count <= 0:
            return super().start_ack_and_lease(queue, acks, count, owner, lease_seconds)
        nodes, acked, pairs = self._pull_order(queue, acks)
        node = nodes[0]
        k = node.queue_keys(queue)
        finish = tokens.start_lease_on(node, k, count, lease_seconds, owner, pairs)

        def read() -> tuple[int, list[Delivery]]:
            folded, leased = spread.lease_reply(finish(), node.index)
            if not leased and len(nodes) > 1:
                leased, _, _ = spread.lease_round(
                    nodes[1:], queue, count, lease_seconds, owner, one_batch=True
                )
            return acked + folded, leased

        return read

    def _settle(self, queue: str, deliveries: typing.Sequence[Delivery], call: _Settle) -> int:
        """Run ``call`` once per node holding some of ``deliveries``; sum its counts."""
        if not deliveries:
            return 0
        nodes = self._all()
        total = 0
        for index, group in spread.group_by_node(deliveries, len(nodes)).items():
            if not 0 <= index < len(nodes):
                continue  # a node no longer configured: its leases cannot be held
            node = nodes[index]
            with node:
                total += call(node.scripts, node.queue_keys(queue), spread.settle_pairs(group))
        return total

    def ack_many(self, queue: str, deliveries: typing.Sequence[Delivery]) -> int:
        """Forget held leased items for good; returns how many (stale ones skipped)."""
        return self._settle(queue, deliveries, Scripts.ack)

    def release_many(self, queue: str, deliveries: typing.Sequence[Delivery]) -> int:
        """Put held leased items back at the head of their priority, uncounted."""
        return self._settle(queue, deliveries, Scripts.release)

    def extend_leases(
        self, queue: str, deliveries: typing.Sequence[Delivery], lease_seconds: float
    ) -> int:
        """Move held leases' deadlines to ``lease_seconds`` from now (server clock)."""
        return self._settle(
            queue, deliveries, lambda s, k, pairs: s.extend(k, pairs, lease_seconds)
        )

    def charge_many(
        self,
        queue: str,
        deliveries: typing.Sequence[Delivery],
        max_deliveries: int,
        reason: str,
        error: str = "",
    ) -> ReclaimResult:
        """Count the delivery of held items whose run ended their worker; requeue them at
        the head, or dead-letter them past the bound (``charge.lua``)."""
        counts: list[tuple[int, int]] = []

        def charge(s: Scripts, k: keys.QueueKeys, pairs: list[str]) -> int:
            counts.append(s.charge(k, pairs, max_deliveries, reason, error))
            return 0

        self._settle(queue, deliveries, charge)
        return ReclaimResult(sum(c[0] for c in counts), sum(c[1] for c in counts))

    def extend_owned(self, queue: str, owner: str, lease_seconds: float) -> int:
        """Extend every batch ``owner`` holds, on every node (``extend_owned.lua``)."""
        return self._sum(
            lambda node: node.scripts.extend_owned(node.queue_keys(queue), owner, lease_seconds)
        )

    def release_owned(self, queue: str, owner: str) -> int:
        """Release every item ``owner`` holds, on every node (``release_owned.lua``)."""
        return self._sum(lambda node: node.scripts.release_owned(node.queue_keys(queue), owner))

    def reclaim_expired(self, queue: str, max_deliveries: int) -> ReclaimResult:
        """Requeue or dead-letter expired leases, in bounded script calls; on a cluster,
        first look for items in shards this connector does not read (``shard_record``)."""
        if self._settings.cluster:
            self._check_unread_shards(queue)
        counts = [spread.reclaim_on(node, queue, max_deliveries) for node in self._all()]
        return ReclaimResult(sum(c[0] for c in counts), sum(c[1] for c in counts))

    def leased_count(self, queue: str) -> int:
        """Number of leased items, expired but unreclaimed ones included."""
        return self._sum(
            lambda node: int(node.client.get(node.queue_keys(queue).leased_count) or 0)
        )

    def dead_letter_many(
        self,
        queue: str,
        deliveries: typing.Sequence[Delivery],
        reason: str,
        error: str = "",
    ) -> int:
        """Move held leased items to the dead letters; returns how many."""
        return self._settle(
            queue,
            deliveries,
            lambda s, k, pairs: s.dead_letter(k, pairs, reason, error),
        )

    def _check_unread_shards(self, queue: str) -> None:
        """Log, once per change, items waiting in shards beyond this connector's count."""
        self._record_shards(queue)
        shards, nodes = self._settings.shards, self._all()
        largest = shard_record.largest_count(nodes[0], queue, shards)
        unread = shard_record.unread_items(nodes[0], queue, shards, largest)
        before = self._unread_shards.get(queue, 0)
        self._unread_shards[queue] = unread
        if unread and not before:
            logger.error(
                "queue %r holds %d items in shards %d-%d, which shards=%d does not read (the "
                "queue was used with shards=%d): run workers with shards=%d until they are "
                "empty, then lower the count",
                queue, unread, shards, largest - 1, shards, largest, largest,
                extra={"event": "shards_unread", "queue": queue},
            )  # fmt: skip
        elif before and not unread:
            logger.info(
                "the shards of queue %r beyond shards=%d are empty now",
                queue, shards,
                extra={"event": "shards_drained", "queue": queue},
            )  # fmt: skip
