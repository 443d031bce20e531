"""The reference pages cannot drift from the code, and the docs build refuses duplicate headings."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from docs_tools import config_pages, transcripts
from docs_tools.pages import FIX_COMMAND, generate, stale_pages
from sergeant import config

PROJECT_ROOT = Path(__file__).resolve().parents[2]
HOOK = PROJECT_ROOT / "docs_tools" / "mkdocs_hooks.py"


def build(site: Path, pages: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``mkdocs build --strict`` of a small docs tree using the project's hook."""
    (site / "docs").mkdir()
    for name, text in pages.items():
        (site / "docs" / name).write_text(textwrap.dedent(text), encoding="utf-8")
    (site / "mkdocs.yml").write_text(
        f"site_name: t\nstrict: true\nhooks:\n  - {HOOK}\n", encoding="utf-8"
    )
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site / "site")],
        cwd=site,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )


@pytest.mark.timeout(240)
def test_committed_reference_pages_are_what_the_code_generates() -> None:
    """The config pages and the CLI transcripts are what ``python -m docs_tools`` writes."""
    result = subprocess.run(
        [sys.executable, "-m", "docs_tools", "--check"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=230,
        check=False,
    )
    assert result.returncode == 0, (
        f"the reference pages differ from the code; run {FIX_COMMAND}\n{result.stdout}"
        + result.stderr
    )


def test_a_stale_config_page_is_reported_with_the_fix(tmp_path: Path) -> None:
    """A hand-edited generated line makes the page stale, and the check names the command."""
    docs = tmp_path / "docs"
    (docs / "reference" / "config").mkdir(parents=True)
    for relative in config_pages.CONFIG_PAGES:
        text = (PROJECT_ROOT / "docs" / relative).read_text(encoding="utf-8")
        (docs / relative).write_text(text.replace("default `0.0`", "default `5.0`"), "utf-8")
    stale = stale_pages(generate(docs, cli=False))
    assert [page.path.name for page in stale] == ["workerconfig.md", "timeouts.md", "schedule.md"]
    assert "+`float`, default `0.0`." in stale[1].diff()


def test_duplicate_field_sections_are_refused() -> None:
    """Two sections for one field (the old ``prefetch`` pair) stop the generator by name."""
    page = "# Timeouts\n\n### `timeout`\n\nA.\n\n### `timeout`\n\nB.\n\n### `grace_period`\n"
    with pytest.raises(config_pages.GeneratorError, match=r"two ### `timeout` sections"):
        config_pages.render(page, config.Timeouts, "timeouts.md")


def test_a_section_for_no_field_is_refused() -> None:
    """A section whose field is gone from the dataclass is not silently dropped."""
    page = "# Timeouts\n\n### `timeout`\n\n### `grace_period`\n\n### `deadline`\n\nOld.\n"
    with pytest.raises(config_pages.GeneratorError, match="deadline, which are not fields"):
        config_pages.render(page, config.Timeouts, "timeouts.md")


def test_error_examples_are_the_codes_messages() -> None:
    """A stale ``ConfigError`` line is rewritten with what the code says for that value."""
    page = "# Timeouts\n\n### `timeout`\n\n```text\nConfigError: Timeouts.timeout is -1; old\n```\n"
    rendered = config_pages.render(page + "\n### `grace_period`\n", config.Timeouts, "t.md")
    assert "ConfigError: Timeouts.timeout is -1; use a number >= 0\n" in rendered
    assert "`float`, default `10.0`. Seconds after the timeout" in rendered


def test_an_accepted_error_example_is_refused() -> None:
    """An example value the code accepts cannot pass as an error example."""
    page = "# T\n\n### `timeout`\n\nConfigError: Timeouts.timeout is 5; no\n\n### `grace_period`\n"
    with pytest.raises(config_pages.GeneratorError, match="the code accepts that value"):
        config_pages.render(page, config.Timeouts, "t.md")


@pytest.mark.timeout(120)
def test_transcripts_are_the_commands_output() -> None:
    """A transcript block's output is replaced by what its commands print, with stand-ins."""
    page = (
        f"{transcripts.MARKER}\n```console\n$ sergeant --version\nstale\n"
        "$ sergeant push -b sqlite:///tmp/sgdoc/broker.sqlite3 emails --kwargs '{}'\n```\n"
        "```console\n$ sergeant --version\nhand-written\n```\n"
    )
    rendered = transcripts.render(page, PROJECT_ROOT)
    first, hand = rendered.split("```\n```console\n")
    assert "$ sergeant --version\nsergeant, version " in first
    assert "stale" not in first
    assert first.count("-0") == 1  # the task id, as a stable stand-in
    assert transcripts.render(page, PROJECT_ROOT) == rendered
    assert hand == "$ sergeant --version\nhand-written\n```\n"


@pytest.mark.timeout(120)
def test_duplicate_headings_fail_the_docs_build(tmp_path: Path) -> None:
    """A page with two headings of the same text fails the build, naming page and heading."""
    result = build(tmp_path, {"index.md": "# T\n\n## `prefetch`\n\nA.\n\n## `prefetch`\n\nB.\n"})
    assert result.returncode != 0
    assert "index.md has duplicate headings: 'prefetch'" in result.stdout + result.stderr


@pytest.mark.timeout(120)
def test_distinct_headings_build(tmp_path: Path) -> None:
    """The same small tree with distinct headings builds: the hook refuses only duplicates."""
    result = build(tmp_path, {"index.md": "# T\n\n## `prefetch`\n\nA.\n\n## `lease`\n\nB.\n"})
    assert result.returncode == 0, result.stdout + result.stderr
