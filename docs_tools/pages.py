"""The pages ``python -m docs_tools`` writes, and the check that they are up to date."""

from __future__ import annotations

import dataclasses
import difflib
from pathlib import Path

from docs_tools import config_pages, transcripts

__all__ = ["FIX_COMMAND", "Page", "generate", "stale_pages"]

#: The command that rewrites every generated part (quoted in failure messages).
FIX_COMMAND = "python -m docs_tools"


@dataclasses.dataclass(frozen=True)
class Page:
    """A page as committed and as the code says it should read."""

    path: Path
    committed: str
    generated: str

    def diff(self) -> str:
        """A unified diff from the committed text to the generated one."""
        return "".join(
            difflib.unified_diff(
                self.committed.splitlines(keepends=True),
                self.generated.splitlines(keepends=True),
                f"{self.path} (committed)",
                f"{self.path} (generated)",
            )
        )


def generate(docs: Path, cli: bool = True) -> list[Page]:
    """Every generated page under ``docs``, committed text beside generated text.

    Args:
        docs: the docs directory.
        cli: also run the command line transcripts (they take a few seconds).
    """
    pages = []
    for relative, cls in config_pages.CONFIG_PAGES.items():
        path = docs / relative
        text = path.read_text(encoding="utf-8")
        pages.append(Page(path, text, config_pages.render(text, cls, relative)))
    if cli:
        path = docs / transcripts.CLI_PAGE
        text = path.read_text(encoding="utf-8")
        pages.append(Page(path, text, transcripts.render(text, docs.parent)))
    return pages


def stale_pages(pages: list[Page]) -> list[Page]:
    """The pages whose committed text is not what the code generates."""
    return [page for page in pages if page.committed != page.generated]
