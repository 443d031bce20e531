"""Where each microsecond of a batched consume goes: ``python -m bench.cpu_budget``.

Runs the batched consume (1,000 no-op tasks a pull, at-least-once and at-most-once)
of ``--n`` tasks on a private Redis and reads the worker's CPU time per task
(``time.process_time``) and Redis's (``INFO cpu``). Then it times, on the same kind of
batch, each step the worker takes per task, in isolation, many times over:

- ``reply``: hiredis parsing the batch's reply (the RESP array of entries);
- ``deliveries``: one ``Delivery`` per entry (payload, id, token, count, slot);
- ``decode``: ``Encoder.decode_many`` (pickle, the default: one ``pickle.loads`` and
  one ``Task`` per entry) and, beside it, ``pickle.loads`` alone, the floor of the codec;
- ``ack``: the acknowledgement pairs of a settled batch (``spread.settle_pairs``);
- ``call``: one Python call of a no-op method, the unit of the per-task steps.

What is left of the measured total is the per-task loop: the executor's run of each
task (``started``, ``work``, ``settle``: a few calls each, about ``call`` apiece) and
the consumer's hand-out. The table says what each step costs and what it is made of.
"""

from __future__ import annotations

import argparse
import pickle
import subprocess
import sys
import time
import typing

import hiredis

from bench.cpu_ab import RUN
from sergeant.connector.redis import entries, spread
from sergeant.encoder import Encoder
from sergeant.objects import Task
from tests.servers import RedisServer

BATCH = 1000


def _per_item(step: typing.Callable[[], object], items: int, seconds: float = 0.5) -> float:
    """CPU microseconds per item of ``step`` (which handles ``items`` items), best of 5."""
    best = float("inf")
    for _ in range(5):
        runs, started = 0, time.process_time()
        while time.process_time() - started < seconds / 5:
            step()
            runs += 1
        best = min(best, (time.process_time() - started) / runs / items * 1e6)
    return best


def _batch() -> tuple[list[bytes], list[bytes]]:
    """A leased batch like the benchmark's: its entries, and its payloads."""
    encoder = Encoder()
    payloads = [encoder.encode(Task(kwargs={"i": i})) for i in range(BATCH)]
    made = entries.make_entries(entries.IdMaker(), b"N", payloads)
    return made, payloads


def steps() -> dict[str, float]:
    """Each per-task step, timed in isolation (µs per task)."""
    made, payloads = _batch()
    resp = b"*%d\r\n" % len(made) + b"".join(b"$%d\r\n%s\r\n" % (len(e), e) for e in made)

    def parse() -> object:
        reader = hiredis.Reader()
        reader.feed(resp)
        return reader.gets()

    encoder = Encoder()
    deliveries = entries.leased(made, 1, 0)

    class Target:
        def noop(self, task: object) -> None:
            return None

    target, task = Target(), Task(kwargs={})

    def calls() -> None:
        noop = target.noop
        for _ in range(BATCH):
            noop(task)

    loads = pickle.loads
    return {
        "reply": _per_item(parse, BATCH),
        "deliveries": _per_item(lambda: entries.leased(made, 1, 0), BATCH),
        "decode": _per_item(lambda: encoder.decode_many(payloads), BATCH),
        "pickle.loads alone": _per_item(lambda: [loads(p) for p in payloads], BATCH),
        "ack": _per_item(lambda: spread.settle_pairs(deliveries), BATCH),
        "call": _per_item(calls, BATCH),
    }


def measured(n: int, delivery: str) -> tuple[float, float]:
    """(worker, Redis) CPU µs per task of a real batched consume of ``n`` tasks."""
    server = RedisServer()
    server.start()
    try:
        out = subprocess.run(
            [sys.executable, "-c", RUN, str(server.port), str(n), str(BATCH), delivery],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
    finally:
        server.close()
    worker, _rate, redis_cpu = map(float, out.stdout.split()[-3:])
    return worker, redis_cpu


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cpu_budget")
    parser.add_argument("--n", type=int, default=300_000)
    args = parser.parse_args()
    parts = steps()
    print("| step | µs per task |\n|---|---|")
    for name, value in parts.items():
        print(f"| {name} | {value:.3f} |")
    for delivery in ("at_least_once", "at_most_once"):
        worker, redis_cpu = measured(args.n, delivery)
        pulled = parts["reply"] + parts["decode"]
        if delivery == "at_least_once":
            pulled += parts["deliveries"] + parts["ack"]
        loop = worker - pulled
        print(
            f"\n{delivery}: worker {worker:.2f} µs/task (Redis {redis_cpu:.2f}): pulling and "
            f"decoding {pulled:.2f}, the per-task loop {loop:.2f} "
            f"(about {loop / parts['call']:.0f} no-op calls' worth)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
