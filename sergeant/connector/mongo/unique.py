"""The MongoDB unique push: ``tasks`` documents carry ``unique_key`` and ``task_id``,
and a unique partial index on ``(queue, unique_key)`` over the documents that have a
``unique_key`` (made in ``support``) lets one document per key and queue exist.

The check and the store are the server's single insert of each document: a
duplicate-key refusal means another item holds the key, whose ``task_id`` is then
read. A document leaves ``tasks`` when its item is acknowledged, popped, moved to
``dead`` (whose copies drop the key: a requeued dead item comes back without one) or
purged, which frees its key. If the holder goes between the refusal and the read,
the insert is tried again. Limit: a push of several documents is not one
transaction (as for ``push_many``); each document is stored or refused on its own.
"""

from __future__ import annotations

import typing

from pymongo.database import Database

from sergeant.connector.mongo.support import Document, allocate, insert_new, new_item

__all__ = ["push_unique"]


def push_unique(
    database: Database[Document],
    queue: str,
    level: int,
    eta: float,
    rows: typing.Sequence[tuple[bytes, str | None, str]],
) -> list[str]:
    """Insert ``(payload, unique_key, task_id)`` rows whose key is free; per row, the
    task id holding its key."""
    if not rows:
        return []
    first = allocate(database, "tail", len(rows))
    documents = []
    for offset, (payload, key, task_id) in enumerate(rows):
        document = new_item(queue, level, first + offset, eta, bytes(payload))
        if key is not None:
            document["unique_key"], document["task_id"] = key, task_id
        documents.append(document)
    holders = [task_id for _, _, task_id in rows]
    refused = sorted(insert_new(database.tasks, documents))
    while refused:
        retry = []
        for index in refused:
            query = {"queue": queue, "unique_key": rows[index][1]}
            holder = database.tasks.find_one(query, {"task_id": 1})
            if holder is None:  # settled since: try again
                retry.append(index)
            else:
                holders[index] = str(holder["task_id"])
        again = insert_new(database.tasks, [documents[i] for i in retry]) if retry else set()
        refused = sorted(retry[i] for i in again)
    return holders
