"""The capacity figures of docs/scaling.md are the benchmark run's, written by it."""

from __future__ import annotations

from pathlib import Path

from bench import markdown_scaling
from bench.cpu import CpuCell
from bench.report import Cell

PAGE = Path(__file__).resolve().parents[2] / "docs" / "scaling.md"


def _cell(rate: float, total_us: float = 3.0, shares: list[float] | None = None) -> Cell:
    cell = Cell(1_000_000, rate, rate, rate, 3, 3)
    cell.cpu = CpuCell(total_us - 0.4, 0.4, total_us, rate, rate, shares or [])
    return cell


def _cells() -> dict[str, dict[str, Cell]]:
    workloads = ["push_bulk", "consume_batched", "consume_batched_amo"]
    workloads += [f"consume_procs_{p}" for p in (1, 2, 4)]
    cells = {
        name: {w: _cell(100_000.0 + i) for i, w in enumerate(workloads)}
        for name, _ in markdown_scaling.COLUMNS
    }
    cells["sergeant-cluster-sharded"]["consume_batched"] = _cell(1.0, 2.5, [0.35, 0.33, 0.32])
    return cells


def test_the_scaling_page_holds_the_markers_the_run_writes_between() -> None:
    text = PAGE.read_text()
    assert text.count(markdown_scaling.BEGIN) == 1
    assert text.index(markdown_scaling.BEGIN) < text.index(markdown_scaling.END)


def test_a_run_rewrites_only_the_figures_between_the_markers(tmp_path: Path) -> None:
    page = tmp_path / "scaling.md"
    page.write_text(PAGE.read_text())
    assert markdown_scaling.rewrite(page, _cells())
    before, after = PAGE.read_text(), page.read_text()
    start, end = markdown_scaling.BEGIN, markdown_scaling.END
    assert after.split(start)[0] == before.split(start)[0]
    assert after.split(end, 1)[1] == before.split(end, 1)[1]
    assert "| bulk push | 100k tasks/s | 100k tasks/s | 100k tasks/s |" in after
    assert "2.50 µs (Redis 0.40)" in after
    assert "35% · 33% · 32%" in after


def test_a_run_without_the_cluster_leaves_the_page_alone(tmp_path: Path) -> None:
    page = tmp_path / "scaling.md"
    page.write_text(PAGE.read_text())
    cells = _cells()
    del cells["sergeant-cluster-sharded"]
    assert not markdown_scaling.rewrite(page, cells)
    assert page.read_text() == PAGE.read_text()
