"""The documentation builds cleanly and its reference covers the whole public surface."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from docs_tools import config_pages
from sergeant import config
from sergeant.executor import HookTarget
from sergeant.worker import Worker

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DOCS = PROJECT_ROOT / "docs"

#: Each config dataclass and the reference page that documents it (the generator's list).
CONFIG_PAGES: dict[type, str] = {cls: page for page, cls in config_pages.CONFIG_PAGES.items()}

#: Public ``Worker`` methods that users override rather than call.
HOOKS = (
    "initialize",
    "finalize",
    "pre_work",
    "post_work",
    "work",
    "on_success",
    "on_failure",
    "on_timeout",
    "on_retry",
    "on_requeue",
    "on_max_retries",
    "on_starvation",
    "on_stop",
    "on_cancel",
)


def page(relative: str) -> str:
    return (DOCS / relative).read_text(encoding="utf-8")


@pytest.mark.timeout(120)
def test_mkdocs_build_is_strict_clean(tmp_path: Path) -> None:
    """``mkdocs build --strict`` succeeds: no broken link, anchor, nav entry or snippet."""
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "index.html").is_file()


def test_every_config_class_has_a_page() -> None:
    """Every dataclass exported by ``sergeant.config`` has a reference page."""
    exported = {
        getattr(config, name)
        for name in config.__all__
        if dataclasses.is_dataclass(getattr(config, name))
    }
    assert exported == set(CONFIG_PAGES)


@pytest.mark.parametrize("cls", list(CONFIG_PAGES), ids=lambda cls: cls.__name__)
def test_every_config_field_is_documented(cls: type) -> None:
    """Every field of a config class has a section (``### `field` ``) on its page."""
    text = page(CONFIG_PAGES[cls])
    assert f"# {cls.__name__}" in text
    missing = [field.name for field in dataclasses.fields(cls) if f"### `{field.name}`" not in text]
    assert missing == []


def test_every_hook_has_a_section() -> None:
    """The hooks page has one section per hook, and lists exactly the worker's hooks."""
    text = page("reference/hooks.md")
    missing = [hook for hook in HOOKS if f"\n## {hook}\n" not in text]
    assert missing == []
    protocol_hooks = {
        name
        for name in vars(HookTarget)
        if not name.startswith("_") and callable(getattr(HookTarget, name))
    }
    assert protocol_hooks <= set(HOOKS)


def test_every_public_worker_method_is_documented() -> None:
    """Every public ``Worker`` method is a hook or has a section on the worker methods page."""
    text = page("reference/worker.md")
    # ``dir``, not ``vars``: the producing, administration and loop methods are mixed in.
    public = [
        name
        for name in dir(Worker)
        if callable(getattr(Worker, name)) and not name.startswith("_") and name not in HOOKS
    ]
    missing = [name for name in public if f"\n### {name}\n" not in text]
    assert missing == []


def test_python_code_blocks_compile() -> None:
    """Every ```python block in the docs is valid Python (snippet includes excepted)."""
    broken = []
    for path in sorted(DOCS.rglob("*.md")):
        blocks = path.read_text(encoding="utf-8").split("```python\n")[1:]
        for index, block in enumerate(blocks):
            code = block.split("```", 1)[0]
            if code.startswith("--8<--"):
                continue
            try:
                compile(code, f"{path.relative_to(DOCS)} block {index}", "exec")
            except SyntaxError as exc:
                broken.append(str(exc))
    assert broken == []
