"""Rich tables for the operator commands: ids are shown whole, other columns give way."""

from __future__ import annotations

import typing

from rich.table import Table

__all__ = ["id_column"]


def id_column(table: Table, title: str, ids: typing.Iterable[object]) -> None:
    """Add a column of ids that is never cut or wrapped: an id is copied into
    other commands (``sergeant dead show``), so a shortened one is useless."""
    widest = max((len(str(value)) for value in ids), default=0)
    table.add_column(title, no_wrap=True, min_width=max(widest, len(title)))
