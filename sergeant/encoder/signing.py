"""Signed payloads: an HMAC-SHA256 over a task's bytes, checked before anything decodes them.

A signed payload is ``MAGIC + key id + HMAC-SHA256(key, payload) + payload``, where
``payload`` is what the serializer and compressor made. The key id (4 bytes of a hash
of the key) picks the key among a worker's keys, so verifying costs one HMAC whatever
the number of keys (rotation: sign with the first key, verify with any).

No serializer or compressor output starts with a zero byte, so ``MAGIC`` cannot be
mistaken for an unsigned payload. A signature proves who wrote the bytes, not that
they are fresh: whoever can write to the broker can still copy a signed task.
"""

from __future__ import annotations

import hashlib
import hmac
import typing

from sergeant.errors import ConfigError, DecodeError

__all__ = ["HEADER_SIZE", "MAGIC", "MIN_KEY_BYTES", "BadSignature", "Signer", "key_id", "strip"]

#: First bytes of every signed payload (format version 1).
MAGIC = b"\x00SG1"
#: Bytes before the payload: the magic, the key id and the HMAC.
HEADER_SIZE = len(MAGIC) + 4 + 32
#: Shortest key accepted: shorter ones can be guessed offline from one signed task.
MIN_KEY_BYTES = 16


def key_id(key: bytes) -> bytes:
    """The 4 bytes that name ``key`` in a signed payload (not enough to learn the key)."""
    return hashlib.sha256(b"sergeant signing key id\x00" + key).digest()[:4]


class BadSignature(DecodeError):
    """A payload's signature is missing, made with an unknown key, or wrong.

    Nothing of the payload was decoded. ``reason`` says which of the three.
    """

    def __init__(self, data: bytes, reason: str) -> None:
        super().__init__("signature", data, reason)
        self.args = (f"bad signature: {reason}",)


class _HmacSha256:
    """HMAC-SHA256 (RFC 2104) under one key, with the padded key's hash states made once:
    each digest then costs two copies and two updates, about half of ``hmac.digest``."""

    def __init__(self, key: bytes) -> None:
        if len(key) > 64:  # SHA-256's block size: longer keys are hashed first
            key = hashlib.sha256(key).digest()
        key = key.ljust(64, b"\0")
        self._inner = hashlib.sha256(bytes(byte ^ 0x36 for byte in key))
        self._outer = hashlib.sha256(bytes(byte ^ 0x5C for byte in key))

    def digest(self, data: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(data)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()


class Signer:
    """Signs payloads with the first key and verifies them with any of the keys.

    Args:
        keys: the signing keys, newest first (at least one, each ``MIN_KEY_BYTES`` long).

    Raises:
        ConfigError: no key, or a key too short.
    """

    def __init__(self, keys: typing.Sequence[bytes]) -> None:
        if not keys:
            raise ConfigError("a Signer needs at least one signing key")
        for index, key in enumerate(keys):
            if len(key) < MIN_KEY_BYTES:
                raise ConfigError(
                    f"signing key #{index + 1} is {len(key)} bytes; use at least "
                    f"{MIN_KEY_BYTES} random bytes, such as secrets.token_urlsafe(32)"
                )
        self._mac = _HmacSha256(keys[0])
        self._prefix = MAGIC + key_id(keys[0])
        self._macs = {key_id(key): _HmacSha256(key) for key in reversed(keys)}

    def __repr__(self) -> str:
        return f"Signer({len(self._macs)} key(s))"  # never the keys themselves

    def sign(self, payload: bytes) -> bytes:
        """The signed form of ``payload``."""
        return self._prefix + self._mac.digest(payload) + payload

    def verify(self, data: bytes) -> bytes:
        """The payload inside signed ``data``, once its signature is checked.

        Raises:
            BadSignature: ``data`` is not signed, or not by one of this signer's keys.
        """
        if not data.startswith(MAGIC):
            raise BadSignature(data, "the task is not signed")
        mac = self._macs.get(data[4:8])
        if mac is None:
            raise BadSignature(data, "signed with a key this worker does not have")
        payload = data[HEADER_SIZE:]
        if not hmac.compare_digest(mac.digest(payload), data[8:HEADER_SIZE]):
            raise BadSignature(data, "the signature does not match the task's bytes")
        return payload


def strip(data: bytes) -> bytes:
    """The payload of ``data`` without its signature, unchecked (for a worker with no key)."""
    return data[HEADER_SIZE:] if data.startswith(MAGIC) else data
