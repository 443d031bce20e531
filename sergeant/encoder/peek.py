"""Reading a task's bytes for an operator, without running anything they hold.

The operator commands (``sergeant dead list``, ``dead show``) show tasks through
:func:`peek`, never through ``pickle.loads``: whoever can write to the broker can
write a pickle that runs code when loaded. Pickles are read by :class:`SafeUnpickler`,
which builds only plain values (the builtin containers and scalars, ``datetime``,
``decimal``, ``uuid``, a few ``collections``) and refuses every other global, so the
task is described instead (``<pickle, 123 bytes, refused global posix.system>``).
Decompression is bounded, and a signature is checked before anything is decoded.
"""

from __future__ import annotations

import bz2
import io
import lzma
import math
import pickle
import typing
import zlib

import msgpack
import orjson

from sergeant.encoder.encoder import Encoder
from sergeant.encoder.signing import MAGIC, BadSignature
from sergeant.objects import Task

__all__ = ["ALLOWED_GLOBALS", "MAX_DECOMPRESSED_BYTES", "Peek", "SafeUnpickler", "jsonable", "peek"]

#: The only globals a peeked pickle may name: constructors of plain values.
ALLOWED_GLOBALS = frozenset(
    {
        *(("builtins", name) for name in ("bytearray", "complex", "frozenset", "set", "slice")),
        *(("datetime", name) for name in ("date", "datetime", "time", "timedelta", "timezone")),
        ("decimal", "Decimal"),
        ("uuid", "UUID"),
        ("uuid", "SafeUUID"),
        *(("collections", name) for name in ("Counter", "OrderedDict", "deque", "defaultdict")),
    }
)
#: Bytes a peeked payload may decompress to (a compression bomb stops here).
MAX_DECOMPRESSED_BYTES = 64 << 20


class RefusedGlobal(pickle.UnpicklingError):
    """The pickle names a global outside ``ALLOWED_GLOBALS``."""


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that builds plain values only: any other global is refused."""

    def find_class(self, module_name: str, global_name: str) -> typing.Any:
        """The allowed global, or ``RefusedGlobal`` naming the one refused."""
        if (module_name, global_name) not in ALLOWED_GLOBALS:
            raise RefusedGlobal(f"refused global {module_name}.{global_name}")
        return super().find_class(module_name, global_name)


class Peek(typing.NamedTuple):
    """What an operator sees of a payload.

    Attributes:
        task: the task, when it could be read safely; else None.
        note: how it was read (``'pickle, 96 bytes, signature valid'``), or why
            it is not shown (``'<pickle, 96 bytes, refused global posix.system>'``).
    """

    task: Task | None
    note: str


def _bounded(decompressor: typing.Any, data: bytes) -> bytes:
    out: bytes = decompressor.decompress(data, MAX_DECOMPRESSED_BYTES)
    if not decompressor.eof:
        raise ValueError(f"truncated, or larger than {MAX_DECOMPRESSED_BYTES >> 20} MiB unpacked")
    return out


_DECOMPRESSORS: dict[str, typing.Callable[[bytes], bytes]] = {
    "zlib": lambda data: _bounded(zlib.decompressobj(), data),
    "gzip": lambda data: _bounded(zlib.decompressobj(wbits=31), data),
    "bzip2": lambda data: _bounded(bz2.BZ2Decompressor(), data),
    "lzma": lambda data: _bounded(lzma.LZMADecompressor(), data),
    "dummy": lambda data: data,
}


def _sniff_compressor(data: bytes) -> str | None:
    """The compressor whose header ``data`` starts with (for brokers named by URL)."""
    if data[:2] == b"\x1f\x8b":
        return "gzip"
    if data[:3] == b"BZh":
        return "bzip2"
    if data[:6] == b"\xfd7zXZ\x00":
        return "lzma"
    if len(data) > 1 and data[0] & 0x0F == 8 and int.from_bytes(data[:2], "big") % 31 == 0:
        return "zlib"
    return None


def _sniff_serializer(data: bytes, configured: str) -> str:
    """The serializer ``data`` looks written by, else the configured one."""
    first = data[:1]
    if first == b"\x80":
        return "pickle"
    if first in (b"[", b" ", b"\n"):
        return "json"
    if (first and 0x90 <= first[0] <= 0x9F) or first in (b"\xdc", b"\xdd"):
        return "msgpack"
    return configured


_LOADERS: dict[str, typing.Callable[[bytes], typing.Any]] = {
    "pickle": lambda data: SafeUnpickler(io.BytesIO(data)).load(),
    "msgpack": lambda data: msgpack.unpackb(data, raw=False, strict_map_key=False),
    "json": orjson.loads,
}


def _unsign(data: bytes, encoder: Encoder) -> tuple[bytes | None, str]:
    """The payload inside ``data`` and the signature's state, or None when not to be read."""
    if encoder.signer is not None:
        try:
            return encoder.signer.verify(data), "signature valid"
        except BadSignature as exc:
            return None, f"bad signature: {exc.reason}"
    if data.startswith(MAGIC):
        return None, "signed, key unknown (name the worker class as module:Class)"
    return data, ""


def peek(data: bytes, encoder: Encoder) -> Peek:
    """The task in ``data`` (encoded by ``encoder``'s kind), read without running code.

    Never raises on bad bytes: what cannot be read safely is described in the note.
    """
    size = f"{len(data)} bytes"
    body, signature = _unsign(data, encoder)
    if body is None:
        return Peek(None, f"<{size}, {signature}; not decoded>")
    compressor = encoder.compressor.name if encoder.compressor else _sniff_compressor(body)
    serializer = _sniff_serializer(body, encoder.serializer.name)
    try:
        if compressor is not None:
            body = _DECOMPRESSORS[compressor](body)
            serializer = _sniff_serializer(body, encoder.serializer.name)
        envelope = _LOADERS[serializer](body)
        # A workflow step or a scheduled task has a sixth item, a dict.
        task_id, kwargs, trace_id, date, run_count, *extras = envelope
        if type(kwargs) is not dict:
            raise TypeError("its kwargs are not a dict")
        if extras and (len(extras) > 1 or type(extras[0]) is not dict):
            raise TypeError("its sixth item is not a dict")
    except RefusedGlobal as exc:
        return Peek(None, f"<{serializer}, {size}, {exc}>")
    except Exception as exc:  # any bad bytes: described, never raised
        return Peek(None, f"<{serializer}, {size}, not a task: {type(exc).__name__}: {exc}>"[:300])
    task = Task(kwargs=kwargs, trace_id=trace_id, date=date, run_count=run_count, id=task_id)
    if extras:
        task.workflow_id, task.scheduled_for = extras[0].get("f"), extras[0].get("s")
    codec = f"{compressor}+{serializer}" if compressor else serializer
    return Peek(task, ", ".join(filter(None, (codec, size, signature))))


def jsonable(value: typing.Any) -> typing.Any:
    """``value`` as JSON can show it: containers kept, other values as their repr."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, dict):
        return {k if isinstance(k, str) else repr(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    return repr(value)
