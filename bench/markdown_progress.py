"""The page's Progress section: what ``python -m bench.progress`` measured (a tool of
its own, not a ``bench/run`` workload), kept here so a regenerated page keeps it.
Rerun ``python -m bench.progress`` and update the figures when ``set_progress``
changes."""

from __future__ import annotations

SECTION = """## Progress

The rows `progress_off` and `progress_on` of `bench/run` measure it on Redis, with a
~9 µs step (see "How each workload is measured"); their target is in the targets table
of a full run. `python -m bench.progress` (Sergeant only) shows smaller bodies: one task
loops 10,000 times over a small body, `sum(range(k))`, with and without a
`set_progress(i / 10_000, "working")` call per iteration, the two alternating; the
median run time of each over 9 rounds, timed inside `work`, on the `memory` broker
(`--broker local` gives the same ratios: at most two writes per second of task).
The target is a ratio under 1.05.

| body per iteration | without (ms) | with set_progress (ms) | ratio | per call (ns) |
|---|---|---|---|---|
| `sum(range(10))` (~0.1 µs) | 1.58 | 5.15 | 3.27 | ~200-350 |
| `sum(range(100))` (~0.5 µs) | 4.81 | 6.80 | 1.42 | 200 |
| `sum(range(1000))` (~9 µs) | 86.72 | 90.03 | 1.04 | ~200-350 |

A call costs about 0.2 µs (checking the fraction, finding the thread's task, reading
the clock), 2 ms for 10,000 calls, whatever the loop does; the broker is written at
most every 0.5 s. The ratio meets the target once an iteration does about 5 µs of
work or more; below that, call it every few iterations. An empty Python method
call already costs about 25 ns here, so no per-iteration call can stay under 1.05
over a 0.1 µs body."""
