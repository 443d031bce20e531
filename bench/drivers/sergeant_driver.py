"""Driver for Sergeant: this project's (any broker) and the original 0.27 (Redis).

Both expose the same Worker API (``generate_config``/``work``/``init_worker``/
``work_loop``/``push_task(s)``), so one driver serves both; fields only this
project has (``delivery``) are passed only when the installed ``WorkerConfig`` has them.
With ``args["sergeant_tree"]`` (a ``--compare`` run) it first checks that ``sergeant``
was imported from that tree.

Workloads (``args["workload"]``): ``push_one``, ``push_bulk``, ``consume`` (one
process, ``tasks_per_transaction`` per pull), ``consume_procs`` (``procs`` worker
processes), ``latency`` (idle worker, push-to-start delays), ``idle_rss`` and
``memory_flat`` (this process's RSS while one worker runs N tasks), ``progress``
(long tasks with and without ``set_progress`` at every step).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import subprocess
import sys
import time
import typing
from pathlib import Path

import _common

import sergeant
from sergeant.config import Connector, WorkerConfig
from sergeant.worker import Worker

#: Tasks pushed per push_tasks call when filling a queue before a consume run.
FILL_CHUNK = 10_000


def worker_config(args: dict[str, typing.Any], max_tasks: int) -> typing.Any:
    """The WorkerConfig of a benchmark worker on the benchmark queue."""
    extra: dict[str, typing.Any] = {}
    fields = {field.name for field in dataclasses.fields(WorkerConfig)}
    if "delivery" in fields and args.get("delivery"):
        extra["delivery"] = args["delivery"]
    if "prefetch" in fields and "prefetch" in args:
        extra["prefetch"] = args["prefetch"]
    if "rate_limit" in fields and args.get("rate_limit"):
        extra["rate_limit"] = sergeant.config.RateLimit(tasks=args["rate_limit"], per_seconds=1.0)
    if "group_concurrency" in fields and args.get("group_concurrency"):
        extra["group_concurrency"] = args["group_concurrency"]
    return WorkerConfig(
        name=args["queue"],
        connector=Connector(type=args["connector"]["type"], params=args["connector"]["params"]),
        max_tasks_per_run=max_tasks,
        tasks_per_transaction=args.get("tasks_per_transaction", 1),
        **extra,
    )


def make_worker(args: dict[str, typing.Any], max_tasks: int = 0, tasks: int = 0) -> typing.Any:
    """A Worker on the benchmark queue that counts each run of task ``i`` (of ``tasks``,
    default ``max_tasks``) in its ledger, notes when its first task started and its
    ``max_tasks``-th ended (``stamps``) and, for the latency run, each task's delay.

    The ledger is a bytearray of run counts allocated up front, not a set of ids: a set
    of a million ids costs more per task (hashing, resizes, every id kept alive), and
    both libraries' figures would carry it.
    """
    runs = bytearray(tasks or max_tasks)  # task i ran runs[i] times (256: ValueError)
    count = itertools.count(1)
    stamps = [0.0, 0.0]
    delays: list[float] = []
    timed = args.get("workload") == "latency"

    class BenchWorker(Worker):  # type: ignore[misc]
        def generate_config(self) -> typing.Any:
            return worker_config(args, max_tasks)

        def work(self, task: typing.Any) -> None:
            kwargs = task.kwargs
            if timed:
                delays.append(time.time() - kwargs["t"])
            runs[kwargs["i"]] += 1
            done = next(count)
            if done == 1:
                stamps[0] = time.time()
            if done == max_tasks:
                stamps[1] = time.time()

    worker = BenchWorker()
    worker.ledger, worker.stamps, worker.delays = runs, stamps, delays
    return worker


def executions(worker: typing.Any) -> int:
    """How many times the worker ran a task (duplicates included)."""
    return sum(worker.ledger)


def distinct_count(worker: typing.Any) -> int:
    """How many distinct tasks the worker ran."""
    return len(worker.ledger) - worker.ledger.count(0)


def distinct(worker: typing.Any) -> list[int]:
    """The ``i`` of every task the worker ran at least once."""
    return [i for i, ran in enumerate(worker.ledger) if ran]


def redis_of(args: dict[str, typing.Any]) -> typing.Any | None:
    """A client of the private single-node Redis when the work goes through it, a list
    of clients of the cluster's primaries on the cluster, else None (SQLite, Mongo)."""
    connector = args["connector"]
    if connector["type"] != "redis":
        return None
    url = connector["params"].get("url", "")
    if url.startswith("redis+cluster://"):
        return _common.primary_clients(url)
    if "nodes" not in connector["params"]:
        return None
    return _common.redis_client(args)


def fill(worker: typing.Any, start: int, stop: int, groups: int = 0) -> None:
    """Push tasks ``{"i": start..stop-1}`` in chunks (not timed); with ``groups``, task
    ``i`` goes to group ``i % groups``."""
    for low in range(start, stop, FILL_CHUNK):
        chunk = range(low, min(stop, low + FILL_CHUNK))
        if groups:
            keys = [f"g{i % groups}" for i in chunk]
            worker.push_tasks([{"i": i} for i in chunk], group_keys=keys)
        else:
            worker.push_tasks([{"i": i} for i in chunk])


def fill_and_run(
    worker: typing.Any, n: int, client: typing.Any | None = None, groups: int = 0
) -> tuple[float, dict[str, float]]:
    """Fill an empty queue with ``n`` tasks (not timed); seconds the work loop takes for
    them, and the CPU this process (and Redis, given ``client``) spent meanwhile."""
    worker.init_worker()
    worker.purge_tasks()
    fill(worker, 0, n, groups)
    cpu = _common.cpu_sample(client)
    started = time.perf_counter()
    worker.work_loop()
    seconds = time.perf_counter() - started
    return seconds, _common.cpu_delta(cpu, _common.cpu_sample(client))


def push_one(args: dict[str, typing.Any]) -> dict[str, typing.Any]:
    worker = make_worker(args)
    worker.init_broker()
    worker.purge_tasks()
    n, client = args["n"], redis_of(args)
    push = worker.push_task
    cpu = _common.cpu_sample(client)
    started = time.perf_counter()
    for i in range(n):
        push({"i": i})
    seconds = time.perf_counter() - started
    cpu = _common.cpu_delta(cpu, _common.cpu_sample(client))
    return _common.result(seconds, n, worker.number_of_enqueued_tasks(), cpu=cpu)


def push_bulk(args: dict[str, typing.Any]) -> dict[str, typing.Any]:
    worker = make_worker(args)
    worker.init_broker()
    worker.purge_tasks()
    n, client = args["n"], redis_of(args)
    kwargs_list = [{"i": i} for i in range(n)]
    cpu = _common.cpu_sample(client)
    started = time.perf_counter()
    worker.push_tasks(kwargs_list)
    seconds = time.perf_counter() - started
    cpu = _common.cpu_delta(cpu, _common.cpu_sample(client))
    return _common.result(seconds, n, worker.number_of_enqueued_tasks(), cpu=cpu)


def consume(args: dict[str, typing.Any]) -> dict[str, typing.Any]:
    n = args["n"]
    worker = make_worker(args, max_tasks=n)
    seconds, cpu = fill_and_run(worker, n, redis_of(args), args.get("groups", 0))
    left = worker.number_of_enqueued_tasks()
    return _common.result(
        seconds,
        n,
        distinct_count(worker),
        executions=executions(worker),
        left_in_queue=left,
        cpu=cpu,
        **_common.steady(*worker.stamps),
    )


def spawn(args: dict[str, typing.Any], **changes: typing.Any) -> subprocess.Popen[str]:
    """Start this script as a child worker process with changed args."""
    child_args = json.dumps({**args, **changes})
    return subprocess.Popen(
        [sys.executable, __file__, child_args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def wait_ready(child: subprocess.Popen[str]) -> None:
    assert child.stdout is not None
    line = child.stdout.readline()
    if line.strip() != "ready":
        raise RuntimeError(f"worker process did not start: {line!r}")


def consume_procs(args: dict[str, typing.Any]) -> dict[str, typing.Any]:
    n, procs = args["n"], args["procs"]
    worker = make_worker(args)
    worker.init_broker()
    worker.purge_tasks()
    fill(worker, 0, n)
    shares = [n // procs + (1 if k < n % procs else 0) for k in range(procs)]
    spawned = time.time()
    children = [spawn(args, role="proc_worker", n=share, tasks=n) for share in shares]
    for child in children:
        wait_ready(child)
    client = redis_of(args)
    redis_before = _common.redis_cpu(client) if client is not None else {}
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    reports = []
    for child in children:
        out, _ = child.communicate(timeout=_common.WAIT_TIMEOUT_SECONDS)
        reports.append(json.loads(out.strip().splitlines()[-1]))
    redis_after = _common.redis_cpu(client) if client is not None else {}
    seen: set[int] = set()
    for report in reports:
        seen.update(report["seen"])
    end = max(r["end"] for r in reports)
    seconds = end - min(r["start"] for r in reports)
    # The processes' CPU adds up: each measured its own work loop.
    cpu = {key: sum(r["cpu"][key] for r in reports) for key in ("worker_user", "worker_sys")}
    cpu.update(_common.cpu_delta(redis_before, redis_after))
    busy = [r for r in reports if r["executions"]] or reports
    return _common.result(
        seconds,
        n,
        len(seen),
        executions=sum(r["executions"] for r in reports),
        per_process=[r["executions"] for r in reports],
        cpu=cpu,
        spawn_seconds=end - spawned,
        **_common.steady(min(r["first"] for r in busy), max(r["last"] for r in busy)),
    )


def proc_worker(args: dict[str, typing.Any]) -> None:
    worker = make_worker(args, max_tasks=args["n"], tasks=args["tasks"])
    worker.init_worker()
    print("ready", flush=True)
    sys.stdin.readline()
    cpu = _common.own_cpu()
    start = time.time()
    worker.work_loop()
    end = time.time()
    cpu = _common.cpu_delta(cpu, _common.own_cpu())
    report = {"start": start, "end": end, "seen": distinct(worker), "cpu": cpu}
    first, last = worker.stamps
    _common.emit({**report, "executions": executions(worker), "first": first, "last": last})


def latency(args: dict[str, typing.Any]) -> dict[str, typing.Any]:
    n, spacing = args["n"], args.get("spacing_seconds", 0.005)
    producer = make_worker(args)
    producer.init_broker()
    producer.purge_tasks()
    child = spawn(args, role="latency_worker")
    wait_ready(child)
    time.sleep(0.5)  # let the worker reach its idle wait
    for i in range(n):
        producer.push_task({"i": i, "t": time.time()})
        time.sleep(spacing)
    out, _ = child.communicate(timeout=_common.WAIT_TIMEOUT_SECONDS)
    report = json.loads(out.strip().splitlines()[-1])
    return _common.latency_result(report["delays"], n, report["distinct"])


def latency_worker(args: dict[str, typing.Any]) -> None:
    worker = make_worker(args, max_tasks=args["n"])
    worker.init_worker()
    print("ready", flush=True)
    worker.work_loop()
    _common.emit({"delays": worker.delays, "distinct": distinct_count(worker)})


def idle_rss(args: dict[str, typing.Any]) -> dict[str, typing.Any]:
    producer = make_worker(args)
    producer.init_broker()
    producer.purge_tasks()
    child = spawn(args, role="idle_worker")
    try:
        wait_ready(child)
        time.sleep(args.get("settle_seconds", 1.5))  # blocked waiting for tasks by now
        rss = _common.rss_of(child.pid)
    finally:
        child.kill()
        child.communicate()
    return _common.result(0.0, 0, None, rss_mb=rss)


def idle_worker(args: dict[str, typing.Any]) -> None:
    worker = make_worker(args, max_tasks=1)
    worker.init_worker()
    print("ready", flush=True)
    worker.work_loop()


class FlatWorker(Worker):  # type: ignore[misc]
    """Runs ``n`` tasks without growing itself: each task's ``i`` is marked in a bitmap
    allocated up front (a set of ids would grow per task), and the process's RSS is read
    every ``every`` tasks and after the last one."""

    def __init__(self, args: dict[str, typing.Any], n: int) -> None:
        import psutil  # only this workload needs it (0.27's venv may not have it)

        self.args, self.n, self.every = args, n, max(1, n // 10)
        # bytearray(n) zero-fills, so its pages are resident before the first sample.
        self.bitmap = bytearray(n)
        self.executions = 0
        self.samples: list[int] = []  # bytes; about ten of them
        self.process = psutil.Process()
        super().__init__()

    def generate_config(self) -> typing.Any:
        return worker_config(self.args, self.n)

    def work(self, task: typing.Any) -> None:
        self.bitmap[task.kwargs["i"]] = 1
        self.executions += 1
        if self.executions % self.every == 0 or self.executions == self.n:
            self.samples.append(self.process.memory_info().rss)


def memory_flat(args: dict[str, typing.Any]) -> dict[str, typing.Any]:
    """One worker runs N queued tasks; RSS growth from the first sample (warm) to the end."""
    n = args["n"]
    worker = FlatWorker(args, n)
    seconds, _ = fill_and_run(worker, n)
    mib = 1024 * 1024
    samples = worker.samples
    # From the lowest sample, not the first: memory the fill left behind and the allocator
    # returns later (a 1 MiB arena, seen) would otherwise hide growth.
    growth = samples[-1] - min(samples) if samples else 0
    return _common.result(
        seconds,
        n,
        n - worker.bitmap.count(0),
        executions=worker.executions,
        left_in_queue=worker.number_of_enqueued_tasks(),
        sample_every=worker.every,
        rss_samples_mib=[sample / mib for sample in samples],
        growth_mib=growth / mib,
        growth_bytes_per_task=growth / max(1, n - worker.every),
    )


class ProgressWorker(Worker):  # type: ignore[misc]
    """Runs tasks of ``steps`` loop steps (``sum(range(1000))``, a few µs), calling
    ``set_progress`` at every step when the task says ``report``; times each task
    inside ``work`` (its throttled progress writes included), by ``report``."""

    def __init__(self, args: dict[str, typing.Any], tasks: int) -> None:
        self.args, self.tasks = args, tasks
        self.seconds = {False: 0.0, True: 0.0}
        self.steps_done = {False: 0, True: 0}
        super().__init__()

    def generate_config(self) -> typing.Any:
        return worker_config(self.args, self.tasks)

    def work(self, task: typing.Any) -> None:
        steps, body, report = self.args["steps"], range(1000), task.kwargs["report"]
        started = time.perf_counter()
        if report:
            set_progress = self.set_progress
            for step in range(steps):
                sum(body)
                set_progress(step / steps, "working")
        else:
            for step in range(steps):
                sum(body)
                step / steps  # the same division as the reporting loop
        self.seconds[report] += time.perf_counter() - started
        self.steps_done[report] += steps


def progress(args: dict[str, typing.Any]) -> dict[str, typing.Any]:
    """``n`` loop steps in tasks of ``steps``, with ``set_progress`` at every step when
    ``report``. Tasks without it run in between (alternating, so the machine's drift
    hits both alike), for ``overhead_ratio``: run time with ÷ without."""
    tasks, report = args["n"] // args["steps"], args["report"]
    worker = ProgressWorker(args, tasks * 2 if report else tasks)
    worker.init_worker()
    worker.purge_tasks()
    kinds = [False, True] * tasks if report else [False] * tasks
    worker.push_tasks([{"report": kind} for kind in kinds])
    worker.work_loop()
    seconds, done = worker.seconds[report], worker.steps_done[report]
    extra = {"overhead_ratio": seconds / worker.seconds[False]} if report else {}
    return _common.result(seconds, args["n"], done, **extra)


WORKLOADS: dict[str, typing.Callable[[dict[str, typing.Any]], dict[str, typing.Any]]] = {
    "progress": progress,
    "push_one": push_one,
    "push_bulk": push_bulk,
    "consume": consume,
    "consume_procs": consume_procs,
    "latency": latency,
    "idle_rss": idle_rss,
    "memory_flat": memory_flat,
}

ROLES: dict[str, typing.Callable[[dict[str, typing.Any]], None]] = {
    "proc_worker": proc_worker,
    "latency_worker": latency_worker,
    "idle_worker": idle_worker,
}


def check_source(args: dict[str, typing.Any]) -> None:
    """Stop unless ``sergeant`` came from the tree the harness asked for: a comparison of
    two revisions would otherwise silently measure one of them twice."""
    tree = args.get("sergeant_tree")
    if tree is None:
        return
    loaded = Path(sergeant.__file__).resolve()
    if not loaded.is_relative_to(Path(tree).resolve()):
        raise SystemExit(f"sergeant was imported from {loaded}, not from {tree}")


def main() -> None:
    args = _common.read_args()
    check_source(args)
    role = args.get("role")
    if role:
        ROLES[role](args)
        return
    _common.emit(WORKLOADS[args["workload"]](args))


if __name__ == "__main__":
    main()
