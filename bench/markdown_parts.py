"""The pieces every page of the report is written with: a Markdown table, and a
figure in the report's short form (``932k``, ``9.3k``, ``342``)."""

from __future__ import annotations

__all__ = ["figure", "table"]


def figure(value: float | None, digits: int = 0) -> str:
    """``value`` as the report prints it: thousands as ``k`` unless ``digits`` are
    asked for; ``n/a`` when there is none."""
    if value is None:
        return "n/a"
    if digits:
        return f"{value:,.{digits}f}"
    if value >= 10_000:
        return f"{value / 1000:,.0f}k"
    if value >= 1_000:
        return f"{value / 1000:,.1f}k"
    return f"{value:,.0f}"


def table(head: list[str], rows: list[list[str]]) -> list[str]:
    """The lines of a Markdown table: its head, the rule, one line per row."""
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]
