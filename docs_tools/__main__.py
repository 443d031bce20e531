"""``python -m docs_tools [--check] [--no-cli]``: regenerate (or check) the reference pages."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from docs_tools.config_pages import GeneratorError
from docs_tools.pages import FIX_COMMAND, generate, stale_pages

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    """Rewrite the generated parts of the reference pages; with ``--check``, only compare."""
    parser = argparse.ArgumentParser(prog="python -m docs_tools", description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if a page is out of date")
    parser.add_argument("--no-cli", action="store_true", help="skip the command transcripts")
    args = parser.parse_args(argv)
    try:
        stale = stale_pages(generate(PROJECT_ROOT / "docs", cli=not args.no_cli))
    except GeneratorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for page in stale:
        if args.check:
            sys.stdout.write(page.diff())
        else:
            page.path.write_text(page.generated, encoding="utf-8")
            print(f"rewrote {page.path.relative_to(PROJECT_ROOT)}")
    if args.check and stale:
        print(f"{len(stale)} page(s) differ from the code; run {FIX_COMMAND}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
