"""Draw the throughput chart from a results JSON (run with the peers venv's matplotlib).

Usage: ``.peers-venv/bin/python bench/render_chart.py results.json chart.png``
"""

from __future__ import annotations

import json
import sys
import typing

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # after choosing the backend

WORKLOADS = [
    ("push_one", "push\none-by-one"),
    ("push_bulk", "push\nbulk"),
    ("consume_one", "consume\none-by-one"),
    ("consume_batched", "consume\nbatched"),
    ("consume_batched_amo", "consume batched\nat-most-once"),
]
LIBRARIES = ["sergeant", "sergeant-0.27", "celery", "rq", "dramatiq", "huey", "arq", "redis-py"]


def main(source: str, target: str) -> None:
    with open(source, encoding="utf-8") as handle:
        summary: dict[str, dict[str, dict[str, typing.Any]]] = json.load(handle)["summary"]
    libraries = [name for name in LIBRARIES if name in summary]
    width = 0.8 / max(1, len(libraries))
    figure, axes = plt.subplots(figsize=(12, 5.5))
    for index, library in enumerate(libraries):
        xs, heights, errors = [], [], [[], []]
        for position, (workload, _) in enumerate(WORKLOADS):
            cell = summary[library].get(workload)
            if not cell or cell["median"] is None:
                continue
            xs.append(position + index * width)
            heights.append(cell["median"])
            errors[0].append(cell["median"] - cell["low"])
            errors[1].append(cell["high"] - cell["median"])
        label = "redis-py (raw ceiling)" if library == "redis-py" else library
        axes.bar(xs, heights, width, yerr=errors, label=label, capsize=2)
    axes.set_yscale("log")
    axes.set_ylabel("tasks per second (log scale, median, min-max)")
    axes.set_xticks([p + 0.4 - width / 2 for p in range(len(WORKLOADS))])
    axes.set_xticklabels([title for _, title in WORKLOADS])
    axes.set_title("Sergeant vs Sergeant 0.27, peers and raw redis-py, one Redis, one run")
    axes.legend(ncol=4, fontsize="small")
    axes.grid(axis="y", which="both", alpha=0.3)
    figure.tight_layout()
    figure.savefig(target, dpi=110)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
