"""Medians, ratios and targets from the runs; the Markdown report and its JSON."""

from __future__ import annotations

import dataclasses
import statistics
import typing

from bench.cpu import CpuCell
from bench.cpu import summarize as summarize_cpu
from bench.libraries import WORKLOADS, Metric
from bench.runner import Run

#: The plain workload each of ours is compared at: 0.27's (at-most-once, no prefetch)
#: and the raw ceiling's (same bytes, plain commands) have the same names.
COMPARED_AT = {
    "push_one": "push_one",
    "push_bulk": "push_bulk",
    "consume_one": "consume_one",
    "consume_one_no_prefetch": "consume_one",
    "consume_batched": "consume_batched",
    "consume_batched_amo": "consume_batched",
    "consume_batched_no_prefetch": "consume_batched",
    "consume_batched_rate_limit": "consume_batched",
}
THROUGHPUT = [
    w.name
    for w in WORKLOADS
    if w.metric is Metric.RATE and "procs" not in w.name and not w.name.startswith("progress")
]


@dataclasses.dataclass
class MemoryRun:
    """One ``memory_flat`` run: this worker's RSS every ``sample_every`` tasks and at the end."""

    round: int
    n: int
    executions: int
    sample_every: int
    samples_mib: list[float]
    growth_mib: float
    growth_bytes_per_task: float

    @classmethod
    def of(cls, run: Run) -> MemoryRun:
        extra = run.extra
        return cls(
            run.round,
            run.n,
            int(extra["executions"]),
            int(extra["sample_every"]),
            [float(sample) for sample in extra["rss_samples_mib"]],
            float(extra["growth_mib"]),
            float(extra["growth_bytes_per_task"]),
        )


@dataclasses.dataclass
class Cell:
    """The runs of one library on one workload, summarised."""

    n: int
    median: float | None
    low: float | None
    high: float | None
    ok_runs: int
    runs: int
    p99: tuple[float, float, float] | None = None
    errors: list[str] = dataclasses.field(default_factory=list)
    memory: list[MemoryRun] = dataclasses.field(default_factory=list)
    cpu: CpuCell | None = None
    #: progress_on: median of each run's task run time with ÷ without, interleaved.
    overhead: float | None = None

    def as_json(self) -> dict[str, typing.Any]:
        return dataclasses.asdict(self)


def _stats(values: list[float]) -> tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)


def summarize(runs: list[Run]) -> dict[str, dict[str, Cell]]:
    """``{library: {workload: Cell}}`` from every run (failed runs are not in the median)."""
    grouped: dict[tuple[str, str], list[Run]] = {}
    for run in runs:
        grouped.setdefault((run.library, run.workload), []).append(run)
    cells: dict[str, dict[str, Cell]] = {}
    for (library, workload), group in grouped.items():
        good = [run for run in group if run.ok and run.value() is not None]
        values = [typing.cast(float, run.value()) for run in good]
        median, low, high = _stats(values) if values else (None, None, None)
        cell = Cell(group[0].n, median, low, high, len(good), len(group))
        cell.errors = [run.error for run in group if run.error]
        p99s = [v for v in (run.value("p99_ms") for run in good) if v is not None]
        if workload == "latency" and p99s:
            cell.p99 = _stats(p99s)
        if workload == "memory_flat":
            cell.memory = [MemoryRun.of(run) for run in good]
        overheads = [v for v in (run.value("overhead_ratio") for run in good) if v is not None]
        if overheads:
            cell.overhead = statistics.median(overheads)
        cell.cpu = summarize_cpu([run.cpu_per_task() for run in good])
        cells.setdefault(library, {})[workload] = cell
    return cells


def _median(cells: dict[str, dict[str, Cell]], library: str, workload: str) -> float | None:
    cell = cells.get(library, {}).get(workload)
    return cell.median if cell else None


def ratio(
    cells: dict[str, dict[str, Cell]], ours: tuple[str, str], theirs: tuple[str, str]
) -> float | None:
    """Median of ``ours`` over median of ``theirs`` (each a ``(library, workload)``)."""
    a, b = _median(cells, *ours), _median(cells, *theirs)
    return a / b if a is not None and b else None


def twin_name(library: str, commit: str) -> str:
    """The column of ``library`` run with the code of ``commit`` (``--compare``)."""
    return f"{library}@{commit}"


def twins(libraries: typing.Iterable[str]) -> dict[str, str]:
    """``{twin: library}`` for every ``library@commit`` column whose library also ran."""
    names = set(libraries)
    found = {name: name.partition("@")[0] for name in names if "@" in name}
    return {twin: base for twin, base in sorted(found.items()) if base in names}


def twin_of(cells: dict[str, dict[str, Cell]], library: str) -> str | None:
    """The ``library@commit`` column of ``library`` in these results, if any."""
    return next((t for t, base in twins(cells).items() if base == library), None)


def compare_ratios(cells: dict[str, dict[str, Cell]]) -> dict[str, dict[str, float | None]]:
    """``{twin: {workload: current / twin}}``: this tree over the other revision."""
    return {
        twin: {
            workload: ratio(cells, (base, workload), (twin, workload))
            for workload in cells[twin]
            if workload in cells[base]
        }
        for twin, base in twins(cells).items()
    }


@dataclasses.dataclass
class Target:
    """One target of DESIGN.md §6 (as set for this round), checked against the medians."""

    name: str
    measured: float | None
    goal: float
    higher_is_better: bool = True
    unit: str = "x"

    @property
    def met(self) -> bool | None:
        if self.measured is None:
            return None
        return self.measured >= self.goal if self.higher_is_better else self.measured < self.goal


def _best_peer(cells: dict[str, dict[str, Cell]], workload: str) -> tuple[str, float] | None:
    peers = ("celery", "rq", "dramatiq", "huey", "arq", "sergeant-0.27")
    found = [(p, m) for p in peers if (m := _median(cells, p, workload)) is not None]
    return max(found, key=lambda pair: pair[1]) if found else None


def targets(cells: dict[str, dict[str, Cell]]) -> list[Target]:
    """The targets this project is judged on, measured."""
    ours, old, raw = "sergeant", "sergeant-0.27", "redis-py"
    result = [
        Target("bulk push vs 0.27", ratio(cells, (ours, "push_bulk"), (old, "push_bulk")), 2.0),
        Target(
            "bulk push vs raw pipelined RPUSH (within 1.5x)",
            ratio(cells, (ours, "push_bulk"), (raw, "push_pipelined")),
            1 / 1.5,
        ),
        Target(
            "batched consume, at-least-once (defaults: one pull ahead), vs 0.27",
            ratio(cells, (ours, "consume_batched"), (old, "consume_batched")),
            1.0,
        ),
        Target(
            "batched consume, at-least-once with prefetch off, vs 0.27",
            ratio(cells, (ours, "consume_batched_no_prefetch"), (old, "consume_batched")),
            1.0,
        ),
        Target(
            "batched consume, at-most-once, vs 0.27",
            ratio(cells, (ours, "consume_batched_amo"), (old, "consume_batched")),
            1.5,
        ),
    ]
    for workload, title in (
        ("consume_one", "one-by-one consume (defaults: three pulls ahead)"),
        ("consume_one_no_prefetch", "one-by-one consume, prefetch off"),
        ("push_one", "one-by-one push"),
    ):
        best = _best_peer(cells, COMPARED_AT.get(workload, workload))
        mine = _median(cells, ours, workload)
        measured = mine / best[1] if best and mine is not None else None
        name = f"{title} vs best of 0.27 and peers ({best[0] if best else 'n/a'})"
        result.append(Target(name, measured, 1.0))
    latency = cells.get(ours, {}).get("latency")
    result += [
        Target("pickup latency p50", latency.median if latency else None, 2.0, False, "ms"),
        Target(
            "pickup latency p99",
            latency.p99[0] if latency and latency.p99 else None,
            10.0,
            False,
            "ms",
        ),
        Target("idle worker RSS", _median(cells, ours, "idle_rss"), 40.0, False, "MiB"),
        _memory_target(cells.get(ours, {}).get("memory_flat")),
        Target(
            "set_progress at each of 10,000 steps: task run time with ÷ without",
            _overhead(cells.get(ours, {}).get("progress_on")),
            1.05,
            False,
            "x",
        ),
        Target(
            "2 processes vs 1",
            ratio(cells, (ours, "consume_procs_2"), (ours, "consume_procs_1")),
            1.6,
        ),
    ]
    return result


def _overhead(cell: Cell | None) -> float | None:
    return cell.overhead if cell is not None else None


def _memory_target(cell: Cell | None) -> Target:
    """RSS growth over the samples (from N/10 tasks, warm, to the end); median of rounds."""
    n = cell.n if cell else 1_000_000
    name = f"memory growth over {n:,} tasks (RSS after {max(1, n // 10):,} to the end)"
    return Target(name, cell.median if cell else None, 2.0, False, "MiB")
