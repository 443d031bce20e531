"""``python -m bench``: run every library's workloads side by side and write the report."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import json
import shlex
import subprocess
import sys
import typing
from collections.abc import Callable, Iterator
from pathlib import Path

from bench import compare, environments, markdown, markdown_scaling
from bench.libraries import (
    BENCH_DIR,
    OWN_ENV,
    PEERS_VENV,
    WORKLOADS,
    Library,
    Sizes,
    all_libraries,
)
from bench.report import compare_ratios, summarize
from bench.runner import Brokers, Run, measure
from tests.redis_servers import RedisClusterServers
from tests.servers import MongoWireServer, RedisServer

PROJECT_DIR = BENCH_DIR.parent


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    defaults = Sizes()
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    add = parser.add_argument
    add("--n", type=int, help=f"tasks per run (default {defaults.n})")
    add(
        "--batched-n",
        type=int,
        help="tasks in the batched consumes of Sergeant (one server and the cluster), "
        "0.27 and redis-py on Redis "
        f"(default {defaults.batched_n:,}, or --n when given)",
    )
    add("--push-one-n", type=int, help="tasks for push one-by-one (default n/10)")
    add("--peer-push-n", type=int, default=defaults.peer_push_n, help="cap for peers' pushes")
    add("--peer-consume-n", type=int, default=defaults.peer_consume_n, help="cap: peers' consume")
    add("--sqlite-n", type=int, default=defaults.sqlite_n, help="cap for the SQLite broker")
    add("--mongo-n", type=int, default=defaults.mongo_n, help="cap for the Mongo broker")
    add("--latency-n", type=int, default=defaults.latency_n, help="tasks in the latency run")
    add("--memory-n", type=int, default=defaults.memory_n, help="tasks in the memory run")
    add("--rounds", type=int, default=3, help="interleaved rounds (default %(default)s)")
    add("--libraries", help="comma-separated subset, e.g. sergeant,sergeant-0.27,redis-py")
    add("--workloads", help="comma-separated subset of: " + ", ".join(w.name for w in WORKLOADS))
    add("--no-peers", action="store_true", help="only libraries of this project's venv")
    add("--compare", metavar="REV", help="also run Sergeant with git revision REV's code")
    add(
        "--output",
        type=Path,
        help="write JSON, Markdown and chart here (default: results+docs; "
        "with --compare: bench/results/compare-COMMIT)",
    )
    add("--no-chart", action="store_true", help="skip the PNG chart")
    add("--profile", action="store_true", help="profile Sergeant's hot paths instead")
    return parser.parse_args(argv)


def sizes_from(args: argparse.Namespace) -> Sizes:
    n = args.n or Sizes.n
    push_one_n = args.push_one_n or max(1, n // 10)
    # A run that sets --n (a quick look, a smoke test) sizes its batched runs with it too.
    batched_n = args.batched_n or (args.n or Sizes.batched_n)
    return Sizes(
        n,
        push_one_n,
        args.peer_push_n,
        args.peer_consume_n,
        args.sqlite_n,
        args.mongo_n,
        args.latency_n,
        args.memory_n,
        batched_n,
    )


def select(args: argparse.Namespace) -> tuple[list[Library], list[str]]:
    """The libraries and workloads this run covers."""
    libraries = all_libraries(Path(sys.executable))
    if args.libraries:
        wanted = args.libraries.split(",")
        unknown = set(wanted) - {library.name for library in libraries}
        if unknown:
            raise SystemExit(f"unknown libraries: {', '.join(sorted(unknown))}")
        libraries = [library for library in libraries if library.name in wanted]
    if args.no_peers:
        libraries = [library for library in libraries if library.name in OWN_ENV]
    workloads = [w.name for w in WORKLOADS]
    if args.workloads:
        workloads = [name for name in args.workloads.split(",") if name in workloads]
    return libraries, workloads


@contextlib.contextmanager
def brokers(
    need_mongo: bool, need_cluster: bool = False
) -> Iterator[tuple[Brokers, Callable[[str], None]]]:
    """Private redis-server (plus nx-27017 and a 3-node Redis Cluster when needed) for the
    whole run; yields where they listen and a function that empties one broker."""
    redis_server = RedisServer()
    redis_server.start()
    mongo = MongoWireServer() if need_mongo else None
    cluster = RedisClusterServers() if need_cluster else None
    try:
        if mongo is not None:
            mongo.start()
        if cluster is not None:
            cluster.start()

        def flush(broker: str) -> None:
            if broker.startswith("redis-cluster") and cluster is not None:
                cluster.flush()
            else:
                redis_server.flush()

        where = Brokers(
            redis_server.port,
            mongo.port if mongo else None,
            cluster_url=cluster.url if cluster else None,
        )
        yield where, flush
    finally:
        if cluster is not None:
            cluster.close()
        if mongo is not None:
            mongo.close()
        redis_server.close()


def run_all(libraries: list[Library], workloads: list[str], sizes: Sizes, rounds: int) -> list[Run]:
    """For each round, each workload, each library: one run (interleaved)."""
    runs: list[Run] = []
    need_mongo = any(library.broker == "mongo" for library in libraries)
    need_cluster = any(library.broker.startswith("redis-cluster") for library in libraries)
    with brokers(need_mongo, need_cluster) as (where, flush):
        for round_number in range(1, rounds + 1):
            for workload in workloads:
                for library in libraries:
                    if workload not in library.workloads:
                        continue
                    flush(library.broker)
                    n = library.size(workload, sizes)
                    run = measure(library, workload, n, where, round_number)
                    runs.append(run)
                    status = "ok" if run.ok else f"FAILED: {run.error}"
                    figure = run.value()
                    shown = f"{figure:,.2f}" if figure is not None else "-"
                    print(
                        f"round {round_number} {workload:<20} {library.name:<24} n={n:<7} "
                        f"{shown:>12} {status}",
                        file=sys.stderr,
                        flush=True,
                    )
    return runs


def collect_versions(libraries: list[Library]) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {}
    for library in libraries:
        if library.group == "ours":
            names = ["sergeant", "redis", "hiredis", "pymongo"]
        else:
            names = [library.version_of or library.name, "redis", "hiredis"]
        found[library.name] = environments.versions(library.python, names)
        # A compare run's two sides share the installed metadata: name their commits.
        if library.source == PROJECT_DIR:
            found[library.name]["sergeant"] += f" (this tree, {compare.this_tree()})"
        elif library.source is not None:
            found[library.name]["sergeant"] = "commit " + library.name.partition("@")[2]
    return found


def render_chart(json_path: Path, png_path: Path) -> bool:
    """Draw the chart with the peers venv's matplotlib (not a dependency of this project)."""
    python = PEERS_VENV / "bin" / "python"
    if not python.exists():
        return False
    png_path.parent.mkdir(parents=True, exist_ok=True)
    script = BENCH_DIR / "render_chart.py"
    subprocess.run([str(python), str(script), str(json_path), str(png_path)], check=True)
    return True


def write_outputs(args: argparse.Namespace, runs: list[Run], meta: dict[str, typing.Any]) -> Path:
    results_dir = args.output or BENCH_DIR / "results"
    docs_dir = args.output or PROJECT_DIR / "docs"
    if "compare" in meta and args.output is None:
        # Never over the published page and results: a side folder per compared commit.
        results_dir = docs_dir = BENCH_DIR / "results" / f"compare-{meta['compare']['commit']}"
    results_dir.mkdir(parents=True, exist_ok=True)
    cells = summarize(runs)
    json_path = results_dir / "latest.json"
    document = {
        **meta,
        "summary": {lib: {w: c.as_json() for w, c in by.items()} for lib, by in cells.items()},
        "runs": [dataclasses.asdict(run) for run in runs],
    }
    if "compare" in meta:
        document["compare"] = {**meta["compare"], "ratios": compare_ratios(cells)}
        print("\n".join(markdown.compare_table(cells)), flush=True)
    json_path.write_text(json.dumps(document, indent=2))
    chart = ""
    if not args.no_chart and render_chart(json_path, docs_dir / "img" / "benchmarks.png"):
        chart = "img/benchmarks.png"
    markdown_path = docs_dir / "benchmarks.md"
    markdown_path.parent.mkdir(parents=True, exist_ok=True)
    markdown_path.write_text(markdown.render(cells, meta, chart))
    if docs_dir == PROJECT_DIR / "docs" and markdown_scaling.rewrite(
        docs_dir / "scaling.md", cells
    ):
        print(f"rewrote the figures of {docs_dir / 'scaling.md'}", file=sys.stderr)
    print(f"wrote {json_path} and {markdown_path}", file=sys.stderr)
    return json_path


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.profile:
        from bench import profile

        profile.main(args.n or Sizes.n, args.output or BENCH_DIR / "results")
        return 0
    libraries, workloads = select(args)
    if any(library.name not in OWN_ENV for library in libraries):
        environments.ensure_peer_venvs()
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    meta: dict[str, typing.Any] = {
        "command": "python -m bench " + shlex.join(argv if argv is not None else sys.argv[1:]),
        "started": started,
        "rounds": args.rounds,
        "sizes": dataclasses.asdict(sizes_from(args)),
    }
    with contextlib.ExitStack() as stack:
        if args.compare:
            commit, tree = stack.enter_context(compare.checkout(args.compare))
            libraries = compare.with_twins(libraries, commit, tree)
            meta["compare"] = {"revision": args.compare, "commit": commit}
        runs = run_all(libraries, workloads, sizes_from(args), args.rounds)
        meta["machine"] = environments.machine()
        meta["versions"] = collect_versions(libraries)
    write_outputs(args, runs, meta)
    failed = [run for run in runs if not run.ok]
    return 1 if failed else 0
