"""Read a payload's task id without decoding the task: no pickle is ever run here.

``get_result`` looks for its task among the dead letters, which hold exactly the
payloads a worker refused or gave up on: bytes that failed to decode, or that a
producer did not write. So the id is read without unpickling: pickle opcodes are
only parsed (``pickletools.genops``), up to the envelope's first item; msgpack and
JSON are parsed by their data-only decoders.
"""

from __future__ import annotations

import pickletools
import typing

import msgpack
import orjson

__all__ = ["peek_task_id"]

# Opcodes that may come before the envelope's first item (framing, the list, memo).
_PICKLE_PREAMBLE = frozenset(
    {"PROTO", "FRAME", "EMPTY_LIST", "LIST", "MARK", "MEMOIZE", "PUT", "BINPUT", "LONG_BINPUT"}
)


def _pickled_id(data: bytes) -> str | None:
    try:
        for opcode, arg, _ in pickletools.genops(data):
            if opcode.name not in _PICKLE_PREAMBLE:
                return arg if isinstance(arg, str) else None
    except Exception:  # malformed opcodes: no id
        return None
    return None


def _first_item(loads: typing.Callable[[bytes], typing.Any], data: bytes) -> str | None:
    try:
        envelope = loads(data)
    except Exception:
        return None
    if isinstance(envelope, list | tuple) and envelope and isinstance(envelope[0], str):
        return envelope[0]
    return None


def peek_task_id(serializer: str, data: bytes) -> str | None:
    """The task id of serialized (not compressed) task bytes, or None if not found.

    Args:
        serializer: ``'pickle'``, ``'msgpack'`` or ``'json'``.
        data: the serializer's bytes.
    """
    if serializer == "pickle":
        return _pickled_id(data)
    if serializer == "msgpack":
        return _first_item(lambda raw: msgpack.unpackb(raw, raw=False, strict_map_key=False), data)
    if serializer == "json":
        return _first_item(orjson.loads, data)
    return None
