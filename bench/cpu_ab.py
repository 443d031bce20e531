"""CPU per task of two revisions, interleaved: ``python -m bench.cpu_ab BEFORE AFTER``.

Checks out both revisions (``git worktree``, in a temporary directory), then runs the
batched consume (at-least-once, or ``--delivery at_most_once``; ``--batch`` per pull) of
``--n`` no-op tasks on one private Redis, each run in
a fresh process importing one revision, alternating BEFORE and AFTER ``--rounds``
times. It prints the worker's CPU time per task (``time.process_time``) of each run,
the Redis server's (``INFO cpu``, user and system, over the consume only) and its
throughput, and the medians' ratios: CPU time is what a noisy shared machine
perturbs least.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.servers import RedisServer

ROOT = Path(__file__).resolve().parents[1]

#: One run, in a process whose sys.path starts at the revision's tree: ``python -c RUN
#: PORT N BATCH [DELIVERY]`` prints CPU µs per task, tasks/s and Redis CPU µs per task.
RUN = """
import sys, time
import redis
from sergeant.config import Connector, WorkerConfig
from sergeant.worker import Worker
port, n, batch = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
delivery = sys.argv[4] if len(sys.argv) > 4 else "at_least_once"
class W(Worker):
    def generate_config(self):
        node = {"host": "127.0.0.1", "port": port, "password": None, "database": 0}
        return WorkerConfig(name="cpu-ab", connector=Connector(type="redis",
            params={"nodes": [node]}), tasks_per_transaction=batch, max_tasks_per_run=n,
            delivery=delivery)
    def work(self, task):
        return None
w = W(); w.init_broker()
w.purge_tasks()
for start in range(0, n, 10000):
    w.push_tasks([{"i": i} for i in range(start, min(n, start + 10000))])
w.init_worker()
server = redis.Redis(port=port)
def server_cpu():
    info = server.info("cpu")
    return info["used_cpu_user"] + info["used_cpu_sys"]
cpu, wall, redis_cpu = time.process_time(), time.perf_counter(), server_cpu()
w.work_loop()
print((time.process_time() - cpu) / n * 1e6, n / (time.perf_counter() - wall),
      (server_cpu() - redis_cpu) / n * 1e6)
"""


def _tree(revision: str, directory: str) -> str:
    path = os.path.join(directory, revision.replace("/", "_"))
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", path, revision], check=True
    )
    return path


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cpu_ab")
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--delivery", choices=("at_least_once", "at_most_once"),
                        default="at_least_once")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    server = RedisServer()
    server.start()
    directory = tempfile.mkdtemp(prefix="sergeant-cpu-ab-")
    trees = {
        name: _tree(rev, directory)
        for name, rev in (("before", args.before), ("after", args.after))
    }
    results: dict[str, list[float]] = {"before": [], "after": []}
    rates: dict[str, list[float]] = {"before": [], "after": []}
    servers: dict[str, list[float]] = {"before": [], "after": []}
    try:
        for _ in range(args.rounds):
            for name, tree in trees.items():
                env = {**os.environ, "PYTHONPATH": tree}
                out = subprocess.run(
                    [sys.executable, "-c", RUN, str(server.port), str(args.n), str(args.batch),
                     args.delivery],
                    env=env, cwd=tree, check=True, capture_output=True, text=True,
                )  # fmt: skip
                cpu, rate, server_cpu = map(float, out.stdout.split()[-3:])
                results[name].append(cpu)
                rates[name].append(rate)
                servers[name].append(server_cpu)
                print(
                    f"{name}: {cpu:.2f} µs/task of CPU, Redis {server_cpu:.2f} µs/task, "
                    f"{rate:,.0f} tasks/s",
                    flush=True,
                )
    finally:
        server.close()
        for tree in trees.values():
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", tree])
    before, after = (statistics.median(results[k]) for k in ("before", "after"))
    print(f"median CPU per task: before {before:.2f} µs, after {after:.2f} µs, "
          f"after/before {after / before:.3f}")  # fmt: skip
    before, after = (statistics.median(servers[k]) for k in ("before", "after"))
    print(f"median Redis CPU per task: before {before:.2f} µs, after {after:.2f} µs, "
          f"after/before {after / before:.3f}")  # fmt: skip
    slow, fast = (statistics.median(rates[k]) for k in ("before", "after"))
    print(f"median throughput: before {slow:,.0f}/s, after {fast:,.0f}/s, "
          f"after/before {fast / slow:.3f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
