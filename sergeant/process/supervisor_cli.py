"""``python -m sergeant.supervisor``: the supervisor's command line (0.27's flags)."""

from __future__ import annotations

import argparse
import logging
import sys
import typing

from sergeant import metrics
from sergeant.errors import SergeantError
from sergeant.process.supervisor import Supervisor

__all__ = ["main"]


def main(argv: typing.Sequence[str] | None = None) -> int:
    """Entry point of ``python -m sergeant.supervisor``; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m sergeant.supervisor", description="Run and respawn Sergeant workers."
    )
    parser.add_argument("--worker-module", required=True, help="module of the worker class")
    parser.add_argument("--worker-class", required=True, help="the Worker subclass to run")
    parser.add_argument("--concurrent-workers", type=int, default=1, help="worker processes")
    parser.add_argument(
        "--max-worker-memory-usage", type=int, default=None, help="bytes per worker, or none"
    )
    # INFO by default, as 0.27: the started / ended / respawning lines are the fleet's pulse.
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO (default), WARNING...")
    parser.add_argument(
        "--metrics-port", type=int, default=None, help="serve Prometheus metrics on this port"
    )
    parser.add_argument(
        "--metrics-host",
        default=metrics.DEFAULT_HOST,
        help="the address the metrics listen on (0.0.0.0: every interface)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s sergeant-supervisor %(message)s"
    )
    try:
        Supervisor(
            args.worker_module,
            args.worker_class,
            args.concurrent_workers,
            args.max_worker_memory_usage,
            metrics_port=args.metrics_port,
            metrics_host=args.metrics_host,
        ).start()
    except SergeantError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
