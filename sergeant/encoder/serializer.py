"""Serializers: turn a task envelope (a tuple of plain values) into bytes and back."""

from __future__ import annotations

import pickle
import typing

import msgpack
import orjson

__all__ = ["SERIALIZERS", "JsonSerializer", "MsgpackSerializer", "PickleSerializer", "Serializer"]


class Serializer(typing.Protocol):
    """Has ``name``, ``dumps`` and ``loads``; ``loads`` may raise anything on bad input."""

    name: str

    def dumps(self, value: typing.Any) -> bytes: ...

    def loads(self, data: bytes) -> typing.Any: ...


_PROTOCOL = pickle.HIGHEST_PROTOCOL


class PickleSerializer:
    """Python pickle, highest protocol: any picklable kwargs. Only for trusted brokers."""

    name = "pickle"

    # One plain call: a functools.partial binding protocol= rebuilds its keyword dict
    # on every call, which made pickling a task a third slower (~440 ns against ~330).
    @staticmethod
    def dumps(value: typing.Any) -> bytes:
        return pickle.dumps(value, _PROTOCOL)

    loads = staticmethod(pickle.loads)  # the C function itself: no frame per task


class MsgpackSerializer:
    """msgpack: compact and fast; kwargs of plain types (bytes allowed)."""

    name = "msgpack"

    def __init__(self) -> None:
        self._packer = msgpack.Packer(use_bin_type=True)

    def dumps(self, value: typing.Any) -> bytes:
        packed: bytes = self._packer.pack(value)
        return packed

    def loads(self, data: bytes) -> typing.Any:
        return msgpack.unpackb(data, raw=False, strict_map_key=False)


class JsonSerializer:
    """JSON through orjson: readable in the broker; kwargs of JSON types only."""

    name = "json"

    def dumps(self, value: typing.Any) -> bytes:
        return orjson.dumps(value)

    loads = staticmethod(orjson.loads)


#: Serializers by their ``sergeant.config.Encoder.serializer`` name.
SERIALIZERS: dict[str, typing.Callable[[], Serializer]] = {
    "pickle": PickleSerializer,
    "msgpack": MsgpackSerializer,
    "json": JsonSerializer,
}
