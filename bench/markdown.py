"""The Markdown report (docs/benchmarks.md)."""

from __future__ import annotations

import typing

from bench import markdown_cpu, markdown_progress
from bench.libraries import WORKLOADS, WORKLOADS_BY_NAME, Metric
from bench.markdown_parts import figure, table
from bench.report import (
    COMPARED_AT,
    THROUGHPUT,
    Cell,
    Target,
    ratio,
    targets,
    twin_of,
    twins,
)

HEADER = """# Benchmarks

One command runs everything (private redis-server, peers' environments, all workloads,
this page, `bench/results/latest.json` and the chart):

```
bench/run                      # = .venv/bin/python -m bench; --help for options
bench/run --n 20000 --rounds 1 # a quicker look
bench/run --profile            # cProfile of Sergeant's hot paths into bench/results/
```

Figures are medians of interleaved rounds (every library runs once per round), with
min-max in brackets. Ratios are what count: absolute rates on a shared 2-core machine
are noise. Every run checks that exactly N distinct tasks were pushed (queue length)
or executed (distinct `i` recorded by the consumer); a run that fails the check is
left out of the median and listed under *Failed runs*. Sergeant's and 0.27's
consumers share one ledger: a bytearray of run counts, one per task, allocated up
front, which costs about 0.08 µs a task more than a `work` that does nothing. The set
of ids it replaced cost 0.12-0.18 µs more than that and kept every id alive (some
60 MB faulted in during the timed run): a cost both sides paid, which pulled every
ratio towards 1x. A busy machine shows as
rounds far apart, and it hurts most what overlaps the worker's work with Redis's on
the second core: one-by-one consume with pulls sent ahead was 0.73x 0.27 (which does
one thing at a time) in a run while other tenants held the cores, 2.05x quiet.

Method, in one paragraph you can check: each round runs every library once, one
after the other on the same private Redis, and the page gives each figure's median
over the rounds, so a library never gets the machine's quiet minutes and another its
busy ones. A consume's *timed* rate runs from the call that starts the work loop to
its return; its *steady-state* rate from the first task's start to the last task's
end (both stamped by the task itself), so start-up cannot flatter a short run;
batched runs default to 1,000,000 tasks, so start-up is under 5% of them. *CPU per
task* is the work's own CPU time (`getrusage` user + system, every thread, of the
process or processes doing it) plus the Redis server's (`used_cpu_user` +
`used_cpu_sys` of `INFO cpu`, summed over a cluster's primaries), both read right
before and right after the timed interval, divided by N: a figure a shared machine
disturbs much less than wall time. To check one change on its own, `python -m
bench.cpu_ab BEFORE AFTER` alternates two revisions on one Redis and prints both
CPU figures per run; `python -m bench.cpu_budget` times each per-task step of a
batched consume beside the measured total.
"""

#: Sergeant on each broker, single-node Redis first and the Redis Cluster next to it.
BROKER_COLUMNS = (
    "sergeant",
    "sergeant-cluster",
    "sergeant-cluster-sharded",
    "sergeant-sqlite",
    "sergeant-mongo",
)
#: Who the worker-processes table shows: single-node Redis, then the Redis Cluster.
SCALING_COLUMNS = ("sergeant", "sergeant-cluster", "sergeant-cluster-sharded")

PEER_COLUMNS = ("sergeant", "sergeant-0.27", "celery", "rq", "dramatiq", "huey", "arq", "redis-py")


def _cell(cell: Cell | None, default_n: int | None, digits: int = 0) -> str:
    if cell is None:
        return ""
    if cell.median is None:
        return "FAILED"
    text = f"{figure(cell.median, digits)} ({figure(cell.low, digits)}-{figure(cell.high, digits)})"
    if default_n is not None and cell.n != default_n:
        text += f" n={cell.n:,}"
    return text


def _ratio(value: float | None) -> str:
    return f"{value:.2f}x" if value is not None else "n/a"


def _with_twins(columns: tuple[str, ...], cells: dict[str, dict[str, Cell]]) -> list[str]:
    """The columns present, each followed by its ``@commit`` twin (``--compare``)."""
    found: list[str] = []
    for column in columns:
        if column in cells:
            twin = twin_of(cells, column)
            found += [column] if twin is None else [column, twin]
    return found


def throughput_table(cells: dict[str, dict[str, Cell]]) -> list[str]:
    """Tasks/s per workload and library, with ours over 0.27, over the raw ceiling and,
    with ``--compare``, over the other revision."""
    columns = _with_twins(PEER_COLUMNS, cells)
    twin = twin_of(cells, "sergeant")
    rows = []
    for workload in THROUGHPUT:
        if not any(workload in cells[c] for c in columns):
            continue
        ours = cells.get("sergeant", {}).get(workload)
        default_n = ours.n if ours else None
        row = [WORKLOADS_BY_NAME[workload].title]
        row += [_cell(cells[c].get(workload), default_n) for c in columns]
        compared = COMPARED_AT.get(workload)
        for reference in ("sergeant-0.27", "redis-py"):  # the two ratio columns
            row.append(
                _ratio(ratio(cells, ("sergeant", workload), (reference, compared)))
                if compared
                else ""
            )
        if twin is not None:
            row.append(_ratio(ratio(cells, ("sergeant", workload), (twin, workload))))
        rows.append(row)
    head = ["workload (tasks/s)", *columns, "ours ÷ 0.27", "ours ÷ ceiling"]
    if twin is not None:
        head.append("ours ÷ " + twin.partition("@")[2])
    return table(head, rows)


def compare_table(cells: dict[str, dict[str, Cell]]) -> list[str]:
    """Every workload of each library next to its ``@commit`` twin, and current ÷ twin."""
    rows = []
    for twin, base in twins(cells).items():
        for workload in WORKLOADS:
            ours, theirs = cells[base].get(workload.name), cells[twin].get(workload.name)
            if ours is None or theirs is None:
                continue
            digits = {Metric.RATE: 0, Metric.LATENCY: 2, Metric.RSS: 2}[workload.metric]
            measured = ratio(cells, (base, workload.name), (twin, workload.name))
            mine, other = _cell(ours, None, digits), _cell(theirs, None, digits)
            unit = workload.metric.value
            rows.append([base, workload.title, unit, mine, other, _ratio(measured)])
    head = ["library", "workload", "unit", "this tree", "other revision", "this ÷ other"]
    return table(head, rows)


def brokers_table(cells: dict[str, dict[str, Cell]]) -> list[str]:
    """Sergeant's throughput on each broker (single-node Redis next to the Redis Cluster)."""
    columns = _with_twins(BROKER_COLUMNS, cells)
    rows = []
    for workload in THROUGHPUT:
        found = [cells[c].get(workload) for c in columns]
        if not any(found) or workload == "push_pipelined":
            continue
        rows.append([WORKLOADS_BY_NAME[workload].title, *[_cell(c, None) for c in found]])
    rows.append(["task count n", *[_counts(cells[c]) for c in columns]])
    return table(["workload (tasks/s)", *columns], rows)


def _counts(by_workload: dict[str, Cell]) -> str:
    counts = {cell.n for name, cell in by_workload.items() if name in THROUGHPUT and cell.n}
    return ", ".join(f"{n:,}" for n in sorted(counts))


def scaling_table(cells: dict[str, dict[str, Cell]]) -> list[str]:
    """Batched consume with 1, 2 and 4 worker processes, on one server and on the cluster."""
    columns = [c for c in _with_twins(SCALING_COLUMNS, cells) if "consume_procs_1" in cells[c]]
    rows = []
    for procs in (1, 2, 4):
        workload = f"consume_procs_{procs}"
        if not any(workload in cells[c] for c in columns):
            continue
        row = [str(procs)]
        for column in columns:
            scale = ratio(cells, (column, workload), (column, "consume_procs_1"))
            row += [_cell(cells[column].get(workload), None), _ratio(scale)]
        rows.append(row)
    head = ["processes"]
    for column in columns:
        head += [f"{column} (tasks/s)", f"{column} vs 1 process"]
    return table(head, rows) if rows else []


def latency_table(cells: dict[str, dict[str, Cell]]) -> list[str]:
    """Pickup latency and idle RSS per library."""
    rows = []
    for library, by_workload in cells.items():
        latency, rss = by_workload.get("latency"), by_workload.get("idle_rss")
        if latency is None and rss is None:
            continue
        p99 = "n/a"
        if latency and latency.p99:
            p99 = f"{latency.p99[0]:.2f} ({latency.p99[1]:.2f}-{latency.p99[2]:.2f})"
        rows.append([library, _cell(latency, None, 2), p99, _cell(rss, None, 1)])
    head = ["library", "latency p50 (ms)", "latency p99 (ms)", "idle worker RSS (MiB)"]
    return table(head, rows)


def memory_table(cells: dict[str, dict[str, Cell]]) -> list[str]:
    """Sergeant's RSS while one worker runs N tasks: one row per round."""
    cell = cells.get("sergeant", {}).get("memory_flat")
    if cell is None or not cell.memory:
        return []
    rows = []
    for run in cell.memory:
        samples = ", ".join(f"{sample:.2f}" for sample in run.samples_mib)
        rows.append(
            [
                str(run.round),
                f"{run.n:,} / {run.executions:,}",
                f"{run.samples_mib[0]:.2f}",
                f"{run.samples_mib[-1]:.2f}",
                f"{run.growth_mib:+.2f}",
                f"{run.growth_bytes_per_task:+.2f}",
                samples,
            ]
        )
    every = cell.memory[0].sample_every
    head = ["round", "tasks / executions", f"RSS after {every:,} (MiB)", "RSS at end (MiB)"]
    head += ["growth (MiB)", "growth (bytes/task)", f"RSS every {every:,} tasks (MiB)"]
    return table(head, rows)


def targets_table(found: list[Target]) -> list[str]:
    rows = []
    for target in found:
        goal = ("≥ " if target.higher_is_better else "< ") + f"{target.goal:.2f}{target.unit}"
        measured = f"{target.measured:.2f}{target.unit}" if target.measured is not None else "n/a"
        status = {True: "met", False: "**not met**", None: "not measured"}[target.met]
        rows.append([target.name, goal, measured, status])
    return table(["target", "goal", "measured", "status"], rows)


def environment_lines(meta: dict[str, typing.Any]) -> list[str]:
    machine = meta["machine"]
    lines = [
        f"- Machine: {machine['cpu']}, {machine['cores']} cores, {machine['ram_gib']} GiB RAM, "
        f"{machine['os']}",
        f"- Python {machine['python']}, redis-server {machine['redis_server']} "
        "(private, loopback, `--save '' --appendonly no`)",
    ]
    for library, found in meta["versions"].items():
        listed = ", ".join(f"{name} {version}" for name, version in found.items())
        lines.append(f"- {library}: {listed}")
    lines.append(f"- Run: {meta['command']} ({meta['rounds']} rounds, {meta['started']})")
    return lines


CLUSTER_NOTE = """`sergeant-cluster` is the same worker on a private three-node Redis Cluster
(`redis+cluster://` URL, no replicas, all three nodes on this machine). One queue
lives in one hash slot, so on one primary: the cluster gives a single queue one
node's capacity; it spreads *many* queues. Its scripts go on a lane per primary,
as on one server (a large lease's batch moved inside Redis, read back by the
`LRANGE` behind it). `sergeant-cluster-sharded` spreads the one queue over three
hash slots, one per primary (`shards=3`); a pull starts on the shard of the
acknowledgements it carries three times in four, so most pulls are one script.
On this machine the three primaries share two cores with the worker: the figures
say what a queue costs per task on a cluster, not what three machines carry."""

MEMORY_NOTE = """Sergeant's memory over N tasks: one worker process (batched 1,000, at-least-once)
runs a queue of N tasks; its RSS after every N/10 tasks. Growth is the last sample minus
the lowest one (the first, unless RSS fell after it); bytes per task over the last 9N/10:"""

COMPARE_NOTE = """Each round ran both trees back to back. Above 1x is this tree doing better for
tasks/s and worse for ms and MiB."""

NOTES = """## How each workload is measured

- **push one-by-one**: one call per task (`push_task`, `enqueue`, `apply_async`, `send`,
  a Huey task call, `enqueue_job` awaited); default 10,000 tasks.
- **push bulk**: each library's fastest idiomatic way: Sergeant and 0.27 `push_tasks`
  (one call), RQ `enqueue_many`, Celery `apply_async` in a loop over one producer,
  arq `enqueue_job` in `asyncio.gather` chunks of 1,000. Dramatiq and Huey have no
  bulk API: their bulk row is the same loop as one-by-one.
- **consume**: the queue is filled first (not timed). Sergeant and 0.27: `work_loop()`
  with `max_tasks_per_run=N`, timed from loop start to return; one-by-one is
  `tasks_per_transaction=1`, batched is 1,000. Ours runs with its defaults
  (`prefetch=None`: on one Redis server, one pull ahead for batches, three one-task
  pulls ahead one by one) unless the row says otherwise. RQ: `SimpleWorker.work(burst=True)`
  (no batched pull). arq: burst worker with `poll_delay=0`, `max_jobs` 1 or 1,000.
  Dramatiq: one worker thread, `queue_prefetch` 2 (its default for one thread: with 1
  it backs off between fetches) or 1,000. Huey: one thread worker (no batched pull).
  Celery: a real `celery worker --pool=solo` with `--prefetch-multiplier` 1 or 1,000,
  timed from its first task's start to its last task's end (its boot is not counted).
- **consume batched, rate_limit** (ours): the batched at-least-once consume with
  `rate_limit=RateLimit(100_000_000, 1.0)`, which never binds: each pull first takes
  its start permits from the broker (one more round trip per batch, one log entry per
  grant), and prefetch is off, as it always is with a rate limit. Compare it with the
  `prefetch off` row for the permits' own cost, and with the plain row for the whole.
- **scaling**: 1, 2 and 4 Sergeant worker processes share one queue of N tasks
  (each with `max_tasks_per_run` = its share), timed from the first process's start
  to the last one's end. The machine has 2 cores, so 4 processes cannot scale further.
  `sergeant-cluster` runs the same on the three-node Redis Cluster.
- **pickup latency**: an idle worker (blocked waiting for tasks) in its own process;
  1,000 tasks pushed ~5 ms apart, each carrying its push `time.time()`; the worker
  records `time.time()` when `work` starts.
- **idle RSS**: psutil RSS of a worker process after `init_worker()`, blocked in
  `work_loop()` on an empty queue, 1.5 s after start.
- **memory over N tasks** (Sergeant on Redis only; N = 1,000,000 unless `--memory-n`):
  the queue is filled first (chunks of 10,000 with `push_tasks`), then one worker in the
  same process (`tasks_per_transaction` 1,000, at-least-once) runs all N with
  `max_tasks_per_run=N`. Its `work` marks the task's `i` in a bytearray allocated up
  front (no set of ids that would itself grow) and counts executions; every N/10 tasks
  it reads the process's RSS (psutil). Growth is the last sample minus the lowest (the
  first sample, taken after N/10 tasks so start-up and the first batches are warm, unless
  memory left from the fill was returned later); the target is under 2 MiB. The run is
  valid when all N distinct tasks ran.
- **consume_batched_groups** (Sergeant only): the `consume_batched` run (batches of
  1,000, at-least-once, default prefetch) over N tasks pushed with
  `push_tasks(..., group_keys=...)`, task i in group `i % 1000`, with
  `group_concurrency=1000` (more than any group holds, so it never binds): every lease
  visits the ring of groups, one task per group per round, and every acknowledgement
  gives its group's slot back. Compare it with the `consume_batched` row for what
  fairness costs per task.
- **progress** (Sergeant only): tasks of 10,000 loop steps, each `sum(range(1000))`
  (a few µs), with and without `set_progress(i / 10_000, "working")` at every step, timed
  inside `work` (the throttled broker writes included); the rows are steps per second.
  The `progress_on` run alternates tasks with and without the call in one worker, so
  the target's ratio (run time with ÷ without, median of rounds; under 1.05) is not
  moved by the machine's drift between runs. A call costs about 0.2 µs whatever the
  loop does (`python -m bench.progress` prints it for smaller bodies too): over a 0.5 µs
  step it adds 40%, so call it every few steps there.
- **raw ceiling (redis-py)**: the very bytes Sergeant pushes (this project's pickle
  encoder), moved with RPUSH one per round trip, pipelined RPUSH one item per command,
  RPUSH 1,000 items per command, LPOP one per round trip, LPOP with count 1,000.
- Peers run smaller N where they take minutes at 100k (shown as `n=` in the cells);
  rates are per second, so the rows stay comparable.
- **one change, before and after**: `python -m bench.cpu_ab BEFORE AFTER` runs the
  batched at-least-once consume of two git revisions, interleaved, each in a fresh
  process on one private Redis, and prints the worker's CPU time per task and the
  throughput of each run and the medians' ratio (`--batch 1` for one-task pulls). CPU
  time per task is what a shared machine perturbs least.
- **compare mode**: `bench/run --compare REV` also runs every Sergeant library of the
  run with the code of git revision REV (exported into a temporary directory, put first
  on the driver's `PYTHONPATH`; the driver checks where `sergeant` came from), as
  `sergeant@COMMIT` right after `sergeant` in every round, so before and after of one
  change come from one run. It adds a column and an `ours ÷ COMMIT` ratio to the
  throughput table and a section with every workload side by side (printed too), and
  writes to `bench/results/compare-COMMIT/` unless `--output` says otherwise (never this
  page). A quick check of one change:
  `bench/run --no-peers --libraries sergeant --compare main~1 --rounds 3
  --workloads push_one,push_bulk,consume_one,consume_batched,consume_batched_amo`.
"""


def render(cells: dict[str, dict[str, Cell]], meta: dict[str, typing.Any], chart: str) -> str:
    """The whole page."""
    lines = [HEADER, "## Environment", "", *environment_lines(meta), ""]
    lines += ["## Targets", "", *targets_table(targets(cells)), ""]
    lines += ["## Throughput on Redis", "", *throughput_table(cells), ""]
    if twins(cells):
        lines += ["## This tree vs " + ", ".join(twins(cells)), "", COMPARE_NOTE, ""]
        lines += [*compare_table(cells), ""]
    lines += markdown_cpu.section(cells)
    if chart:
        lines += [f"![throughput by library and workload]({chart})", ""]
    if any(name in cells for name in BROKER_COLUMNS[1:]):
        lines += ["## Sergeant on each broker", ""]
        if "sergeant-cluster" in cells or "sergeant-cluster-sharded" in cells:
            lines += [CLUSTER_NOTE, ""]
        if "sergeant-mongo" in cells:
            lines += ["The Mongo broker runs on nx-27017 (a slow Python wire-protocol server), so"]
            lines += ["it moves fewer tasks; its figures say nothing about a real MongoDB.", ""]
        lines += [*brokers_table(cells), ""]
    scaling = scaling_table(cells)
    if scaling:
        lines += ["## Worker processes (Sergeant, batched, at-least-once)", "", *scaling, ""]
    lines += ["## Latency and memory", "", *latency_table(cells), ""]
    memory = memory_table(cells)
    if memory:
        lines += [MEMORY_NOTE, "", *memory, ""]
    failed = [
        f"- {library} / {workload}: {error}"
        for library, by_workload in cells.items()
        for workload, cell in by_workload.items()
        for error in cell.errors
    ]
    if failed:
        lines += ["## Failed runs", "", *failed, ""]
    lines += [markdown_progress.SECTION, ""]
    lines += [NOTES + markdown_cpu.CPU_METHOD]
    return "\n".join(lines)
