"""Unit tests run on the in-process ``memory`` broker: no file, no server.

An audit hook turns any SQLite connection opened during a unit test into an error,
so a test that needs a file or a server is moved to ``tests/integration``.
"""

from __future__ import annotations

import sys
import typing
from collections.abc import Iterator

import pytest

_IN_UNIT_TEST = [False]


def _refuse_sqlite(event: str, args: tuple[typing.Any, ...]) -> None:
    if event == "sqlite3.connect" and _IN_UNIT_TEST[0]:
        raise RuntimeError(f"a unit test opened a SQLite database {args[0]!r}; use 'memory'")


sys.addaudithook(_refuse_sqlite)


@pytest.fixture(autouse=True)
def _no_sqlite_file() -> Iterator[None]:
    _IN_UNIT_TEST[0] = True
    try:
        yield
    finally:
        _IN_UNIT_TEST[0] = False
