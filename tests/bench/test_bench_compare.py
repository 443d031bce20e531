"""``bench/run --compare REV``: twin naming, ordering and ratios (no benchmark is run)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bench import compare, markdown
from bench.libraries import all_libraries
from bench.report import Cell, compare_ratios, twin_name, twins


def _cell(median: float) -> Cell:
    return Cell(1000, median, median, median, 1, 1)


def test_each_sergeant_library_is_followed_by_its_twin_on_the_other_tree() -> None:
    libraries = [lib for lib in all_libraries(Path(sys.executable)) if lib.name != "celery"]
    tree = Path("/somewhere/else")
    paired = compare.with_twins(libraries, "abc1234", tree)
    names = [library.name for library in paired]
    assert names[:4] == [
        "sergeant",
        "sergeant@abc1234",
        "sergeant-cluster",
        "sergeant-cluster@abc1234",
    ]
    assert "redis-py@abc1234" not in names
    assert "sergeant-0.27@abc1234" not in names
    by_name = {library.name: library for library in paired}
    assert by_name["sergeant"].source == compare.PROJECT_DIR
    assert by_name["sergeant@abc1234"].source == tree
    assert by_name["sergeant@abc1234"].workloads == by_name["sergeant"].workloads
    assert by_name["sergeant-mongo@abc1234"].broker == "mongo"


def test_compare_without_a_sergeant_library_is_refused() -> None:
    raw = [lib for lib in all_libraries(Path(sys.executable)) if lib.name == "redis-py"]
    with pytest.raises(SystemExit):
        compare.with_twins(raw, "abc1234", Path("/x"))


def test_ratios_are_this_tree_over_the_other_revision() -> None:
    twin = twin_name("sergeant", "abc1234")
    assert twin == "sergeant@abc1234"
    cells = {
        "sergeant": {"push_bulk": _cell(300.0), "consume_batched": _cell(100.0)},
        twin: {"push_bulk": _cell(200.0), "consume_batched": _cell(0.0)},
        "orphan@abc1234": {"push_bulk": _cell(1.0)},
    }
    assert twins(cells) == {twin: "sergeant"}
    assert compare_ratios(cells) == {twin: {"push_bulk": 1.5, "consume_batched": None}}
    table = markdown.throughput_table(cells)
    assert table[0].startswith("| workload (tasks/s) | sergeant | sergeant@abc1234 |")
    assert table[0].endswith("| ours ÷ abc1234 |")
    assert table[2].endswith("| 1.50x |")
    rows = markdown.compare_table(cells)
    assert len(rows) == 4
    assert rows[2].startswith("| sergeant | push bulk | tasks/s |")


def test_checkout_exports_the_revision_package_and_removes_it() -> None:
    with compare.checkout("HEAD") as (commit, tree):
        assert commit == compare.short_commit("HEAD")
        assert (tree / "sergeant" / "__init__.py").is_file()
    assert not tree.exists()
    with pytest.raises(SystemExit):
        compare.short_commit("no-such-revision-here")
