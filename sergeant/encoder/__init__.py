"""Encoding of tasks: a serializer (pickle, msgpack, json), an optional compressor and an
optional signature; ``peek`` reads tasks for operators without running their bytes."""

from __future__ import annotations

from sergeant.encoder import compressor, encoder, peek, serializer, signing
from sergeant.encoder.compressor import COMPRESSORS, Compressor
from sergeant.encoder.encoder import Encoder
from sergeant.encoder.serializer import SERIALIZERS, Serializer

__all__ = [
    "COMPRESSORS",
    "SERIALIZERS",
    "Compressor",
    "Encoder",
    "Serializer",
    "compressor",
    "encoder",
    "peek",
    "serializer",
    "signing",
]
