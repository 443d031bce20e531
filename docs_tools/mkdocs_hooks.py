"""A mkdocs hook (``hooks:`` in mkdocs.yml): the build fails on a page with duplicate headings.

Two headings with the same text on one page are two sections about one thing (the
second usually a stale copy), and the second one's anchor cannot be linked to by name.
"""

from __future__ import annotations

import collections
import typing

from mkdocs.exceptions import PluginError

if typing.TYPE_CHECKING:
    from mkdocs.config.defaults import MkDocsConfig
    from mkdocs.structure.files import Files
    from mkdocs.structure.pages import Page
    from mkdocs.structure.toc import AnchorLink

__all__ = ["duplicate_headings", "on_page_content"]


def _walk(items: typing.Iterable[AnchorLink]) -> typing.Iterator[AnchorLink]:
    for item in items:
        yield item
        yield from _walk(item.children)


def duplicate_headings(page: Page) -> list[str]:
    """The heading titles that occur more than once on the page."""
    counts = collections.Counter(item.title for item in _walk(page.toc))
    return [title for title, count in counts.items() if count > 1]


def on_page_content(html: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Refuse a page with duplicate headings.

    Raises:
        PluginError: the page has two headings with the same text.
    """
    duplicates = duplicate_headings(page)
    if duplicates:
        raise PluginError(
            f"{page.file.src_uri} has duplicate headings: "
            + ", ".join(repr(title) for title in duplicates)
            + "; merge the sections or give each its own title"
        )
    return html
