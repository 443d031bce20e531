"""Compressors applied after serialization (optional)."""

from __future__ import annotations

import bz2
import gzip
import lzma
import typing
import zlib

__all__ = ["COMPRESSORS", "Compressor", "ModuleCompressor"]


class Compressor(typing.Protocol):
    """Has ``name``, ``compress`` and ``decompress``; ``decompress`` may raise on bad input."""

    name: str

    def compress(self, data: bytes) -> bytes: ...

    def decompress(self, data: bytes) -> bytes: ...


class ModuleCompressor:
    """A compressor backed by a standard-library module's compress/decompress."""

    def __init__(
        self,
        name: str,
        compress: typing.Callable[[bytes], bytes],
        decompress: typing.Callable[[bytes], bytes],
    ) -> None:
        self.name = name
        self.compress = compress
        self.decompress = decompress


def _identity(data: bytes) -> bytes:
    return data


#: Compressors by their ``sergeant.config.Encoder.compressor`` name.
COMPRESSORS: dict[str, typing.Callable[[], Compressor]] = {
    "bzip2": lambda: ModuleCompressor("bzip2", bz2.compress, bz2.decompress),
    "gzip": lambda: ModuleCompressor("gzip", gzip.compress, gzip.decompress),
    "lzma": lambda: ModuleCompressor("lzma", lzma.compress, lzma.decompress),
    "zlib": lambda: ModuleCompressor("zlib", zlib.compress, zlib.decompress),
    "dummy": lambda: ModuleCompressor("dummy", _identity, _identity),
}
