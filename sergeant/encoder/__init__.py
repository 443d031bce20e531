"""Encoding of tasks: a serializer (pickle, msgpack, json) and an optional compressor."""

from __future__ import annotations

from sergeant.encoder import compressor, encoder, serializer
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
    "serializer",
]
