"""The CPU and steady-state tables of the Markdown report."""

from __future__ import annotations

from bench.libraries import WORKLOADS, WORKLOADS_BY_NAME, Metric
from bench.markdown_parts import table
from bench.report import COMPARED_AT, Cell, ratio, twin_of

#: Who the CPU tables show (each followed by its ``@commit`` twin with ``--compare``).
CPU_COLUMNS = (
    "sergeant",
    "sergeant-cluster",
    "sergeant-cluster-sharded",
    "sergeant-0.27",
    "celery",
    "rq",
    "dramatiq",
    "huey",
    "arq",
    "redis-py",
)
ORIGINAL = "sergeant-0.27"
#: Every workload that moves tasks through Redis, in report order.
CPU_WORKLOADS = [
    w.name for w in WORKLOADS if w.metric is Metric.RATE and not w.name.startswith("progress")
]

CPU_NOTE = """CPU microseconds per task over each run's timed interval (start-up and the
fill excluded), medians of the rounds: the process(es) doing the work (user + system),
the Redis server (`INFO cpu`), and their sum. Lower is better, and so is a CPU ratio
below 1x; the tasks/s ratio is the wall-clock one (above 1x is faster). Both ratios are
against 0.27 at the same plain workload, from the same interleaved rounds."""

STEADY_NOTE = """Consume rates three ways: the timed interval of the throughput table;
steady state, from the first task's start to the last task's end; and spawn to last,
from starting the worker (its process, for Celery and the worker processes) to the last
task's end."""

CPU_METHOD = """- **CPU per task**: each driver reads its own `getrusage(RUSAGE_SELF)` (user +
  system, every thread) right before and right after its timed interval, so start-up and
  filling the queue are not counted; RQ, Dramatiq, Huey and arq consume in the driver's
  process. Celery's worker is a separate process (solo pool, tasks run in it): its task
  reads that process's rusage at the first task's start and the last task's end. Each
  of Sergeant's worker processes (`consume_procs_*`) measures its own work loop and the
  driver adds them up. Redis: `used_cpu_user` + `used_cpu_sys` of `INFO cpu` read at the
  same two moments (the JSON also has the main thread's figures and, as
  `redis_cpu_whole_run`, the whole driver run's, fill included). On the Redis Cluster
  the Redis figure is the sum over its three primaries, and each primary's share is
  listed; not measured for SQLite and Mongo. The kernel accounts CPU
  in clock ticks, so small runs are coarse; batched runs of the fast libraries default
  to 1,000,000 tasks (`--batched-n`).
- **steady state and spawn to last**: Sergeant's worker, and each peer's task, stamp
  the first task's start and the last task's end; spawn to last runs from the worker's
  start (process spawn for Celery and `consume_procs_*`, else the call that starts it).
"""


def _us(value: float | None) -> str:
    return f"{value:,.2f}" if value is not None else "n/a"


def _ratio(value: float | None) -> str:
    return f"{value:.2f}x" if value is not None else "n/a"


def _rate(value: float | None) -> str:
    return f"{value:,.0f}" if value is not None else "n/a"


def _columns(cells: dict[str, dict[str, Cell]]) -> list[str]:
    found: list[str] = []
    for column in CPU_COLUMNS:
        if column in cells:
            twin = twin_of(cells, column)
            found += [column] if twin is None else [column, twin]
    return found


def cpu_ratio(cells: dict[str, dict[str, Cell]], library: str, workload: str) -> float | None:
    """Total CPU per task of ``library`` over 0.27's at the same plain workload."""
    mine = cells.get(library, {}).get(workload)
    theirs = cells.get(ORIGINAL, {}).get(COMPARED_AT.get(workload, workload))
    if mine is None or theirs is None or mine.cpu is None or theirs.cpu is None:
        return None
    a, b = mine.cpu.total_us, theirs.cpu.total_us
    return a / b if a is not None and b else None


def _vs_original(cells: dict[str, dict[str, Cell]], library: str, workload: str) -> list[str]:
    if library == ORIGINAL:
        return ["", ""]
    wall = ratio(cells, (library, workload), (ORIGINAL, COMPARED_AT.get(workload, workload)))
    return [_ratio(cpu_ratio(cells, library, workload)), _ratio(wall)]


def cpu_table(cells: dict[str, dict[str, Cell]]) -> list[str]:
    """Per workload and library: worker, Redis and total CPU µs per task, and vs 0.27."""
    rows = []
    for workload in CPU_WORKLOADS:
        for library in _columns(cells):
            cell = cells[library].get(workload)
            if cell is None or cell.cpu is None:
                continue
            figures = cell.cpu
            row = [WORKLOADS_BY_NAME[workload].title, library, f"{cell.n:,}"]
            row += [_us(figures.worker_us), _us(figures.redis_us), _us(figures.total_us)]
            rows.append(row + _vs_original(cells, library, workload))
    head = ["workload", "library", "n", "worker µs/task", "Redis µs/task", "total µs/task"]
    head += ["CPU ÷ 0.27", "tasks/s ÷ 0.27"]
    return table(head, rows) if rows else []


def steady_table(cells: dict[str, dict[str, Cell]]) -> list[str]:
    """Consume rates: timed interval, steady state and spawn to last."""
    rows = []
    for workload in CPU_WORKLOADS:
        if not workload.startswith("consume"):
            continue
        for library in _columns(cells):
            cell = cells[library].get(workload)
            if cell is None or cell.cpu is None:
                continue
            title = WORKLOADS_BY_NAME[workload].title
            timed, figures = _rate(cell.median), cell.cpu
            rows.append(
                [title, library, timed, _rate(figures.steady_rate), _rate(figures.spawn_rate)]
            )
    head = ["workload (tasks/s)", "library", "timed", "steady state", "spawn to last"]
    return table(head, rows) if rows else []


SHARES_NOTE = """Each cluster primary's share of the Redis CPU, largest first (each run's
queue has its own name, so its own slot: medians of the rounds, share by rank): one
queue lives on one primary unless it is sharded (`sergeant-cluster-sharded`,
`shards=3`: one shard per primary)."""


def shares_table(cells: dict[str, dict[str, Cell]]) -> list[str]:
    """Per cluster run: each primary's share of the Redis CPU."""
    rows = []
    for workload in CPU_WORKLOADS:
        for library in _columns(cells):
            cell = cells[library].get(workload)
            if cell is None or cell.cpu is None or not cell.cpu.redis_shares:
                continue
            shares = " · ".join(f"{share:.0%}" for share in cell.cpu.redis_shares)
            rows.append([WORKLOADS_BY_NAME[workload].title, library, shares])
    return table(["workload", "library", "Redis CPU per primary"], rows) if rows else []


def section(cells: dict[str, dict[str, Cell]]) -> list[str]:
    """The page's CPU section (empty when no run reported CPU)."""
    cpu = cpu_table(cells)
    if not cpu:
        return []
    lines = ["## CPU per task on Redis", "", CPU_NOTE, "", *cpu, ""]
    steady = steady_table(cells)
    if steady:
        lines += [STEADY_NOTE, "", *steady, ""]
    shares = shares_table(cells)
    if shares:
        lines += [SHARES_NOTE, "", *shares, ""]
    return lines
