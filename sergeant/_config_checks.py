"""The field checks behind the config dataclasses' ``ConfigError`` messages.

Each names the field, the value and what is accepted; ``sergeant.config`` calls
them from ``__post_init__``.
"""

from __future__ import annotations

import typing

from sergeant.errors import ConfigError

__all__ = [
    "MIN_SIGNING_KEY_BYTES",
    "check_choice",
    "check_number",
    "check_type",
    "fail",
    "key_bytes",
]

#: Shortest signing key accepted, in bytes (``sergeant.encoder.signing.MIN_KEY_BYTES``).
MIN_SIGNING_KEY_BYTES = 16


def fail(field: str, value: object, expected: str) -> typing.NoReturn:
    raise ConfigError(f"{field} is {value!r}; {expected}")


def check_choice(field: str, value: object, choices: typing.Iterable[object]) -> None:
    choices = tuple(choices)
    if value not in choices:
        fail(field, value, "use one of " + ", ".join(repr(choice) for choice in choices))


def check_number(field: str, value: object, minimum: float, integer: bool = False) -> None:
    kinds: tuple[type, ...] = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        fail(field, value, f"use {'an integer' if integer else 'a number'} >= {minimum}")
    if typing.cast(float, value) < minimum:
        fail(field, value, f"use {'an integer' if integer else 'a number'} >= {minimum}")


def check_type(field: str, value: object, kind: type, description: str) -> None:
    if not isinstance(value, kind):
        fail(field, value, f"use {description}")


def key_bytes(source: str, keys: list[str | bytes]) -> list[bytes]:
    """The keys as bytes, each checked (the messages never show a key)."""
    if not keys:
        raise ConfigError(f"{source} holds no key; give at least one")
    result = []
    for index, key in enumerate(keys):
        if not isinstance(key, (str, bytes)):
            raise ConfigError(f"{source}: key #{index + 1} is a {type(key).__name__}; use str")
        data = key.encode() if isinstance(key, str) else key
        if len(data) < MIN_SIGNING_KEY_BYTES:
            raise ConfigError(
                f"{source}: key #{index + 1} is {len(data)} bytes; use at least "
                f"{MIN_SIGNING_KEY_BYTES} random bytes, such as secrets.token_urlsafe(32)"
            )
        result.append(data)
    return result
