"""Tools that keep the documentation true to the code.

``python -m docs_tools`` rewrites the generated parts of the reference pages: the
config field summaries (from the dataclasses' docstrings), the ``ConfigError``
examples (by building each bad value) and the command line transcripts (by running
the commands). ``python -m docs_tools --check`` fails when a page differs. The
mkdocs hook in ``docs_tools.mkdocs_hooks`` makes the docs build fail on duplicate
headings.
"""

from __future__ import annotations

__all__: list[str] = []
