"""``--compare REV``: the same Sergeant workloads, also with the code of another revision.

REV's ``sergeant`` package is exported (``git archive``) into a temporary directory. Each
Sergeant library of the run gets a twin, ``<name>@<commit>``, that runs this tree's
driver in this interpreter with that directory first on ``PYTHONPATH``; the twin comes
right after its library, so every round measures both and before/after come from one run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from bench.libraries import BENCH_DIR, Library
from bench.report import twin_name

PROJECT_DIR = BENCH_DIR.parent
#: Sergeant on each broker: one driver, so any revision's package can run it.
TWINNED = ("sergeant", "sergeant-cluster", "sergeant-sqlite", "sergeant-mongo")


def _git(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", "-C", str(PROJECT_DIR), *args], capture_output=True)


def short_commit(revision: str) -> str:
    """The abbreviated commit hash of ``revision`` (a branch, ``main~3``, a hash...)."""
    found = _git("rev-parse", "--verify", "--short", f"{revision}^{{commit}}")
    if found.returncode != 0:
        raise SystemExit(f"--compare: not a revision of this repository: {revision!r}")
    return found.stdout.decode().strip()


def this_tree() -> str:
    """This checkout's commit, and whether its ``sergeant`` package has changes on top."""
    head = _git("rev-parse", "--short", "HEAD").stdout.decode().strip()
    changed = _git("status", "--porcelain", "--", "sergeant").stdout.strip()
    return f"{head} with uncommitted changes" if changed else head


@contextlib.contextmanager
def checkout(revision: str) -> Iterator[tuple[str, Path]]:
    """``(commit, tree)``: ``revision``'s ``sergeant`` package in a temporary directory,
    removed on exit."""
    commit = short_commit(revision)
    tree = Path(tempfile.mkdtemp(prefix=f"sergeant-{commit}-"))
    try:
        archive = _git("archive", "--format=tar", commit, "sergeant")
        if archive.returncode != 0:
            raise SystemExit(f"--compare: {revision} has no sergeant package to export")
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
        yield commit, tree
    finally:
        shutil.rmtree(tree, ignore_errors=True)


def with_twins(libraries: list[Library], commit: str, tree: Path) -> list[Library]:
    """``libraries`` with each Sergeant one followed by its twin on ``tree``; both sides get
    a source, so each driver checks which package it imported."""
    result: list[Library] = []
    for library in libraries:
        if library.name not in TWINNED:
            result.append(library)
            continue
        result.append(dataclasses.replace(library, source=PROJECT_DIR))
        twin = dataclasses.replace(library, name=twin_name(library.name, commit), source=tree)
        result.append(twin)
    if len(result) == len(libraries):
        raise SystemExit("--compare needs a Sergeant library: " + ", ".join(TWINNED))
    return result
