"""``sergeant run module:Class``: run a worker class under the supervisor."""

from __future__ import annotations

import logging
import re

import click

from sergeant import metrics
from sergeant.errors import SergeantError
from sergeant.process.supervisor import Supervisor

__all__ = ["parse_size", "run"]

_UNITS = {
    "": 1,
    "B": 1,
    "K": 1024,
    "KB": 1024,
    "M": 1024**2,
    "MB": 1024**2,
    "G": 1024**3,
    "GB": 1024**3,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")


def parse_size(text: str) -> int:
    """Bytes in a size such as ``'512MB'``, ``'1.5GB'``, ``'800K'`` or ``'1000000'``.

    Units are B, K/KB, M/MB, G/GB, in powers of 1024 (1 MB = 1,048,576 bytes).

    Raises:
        ValueError: the text is not a size.
    """
    match = _SIZE.match(text)
    unit = match.group(2).upper() if match else ""
    if match is None or unit not in _UNITS:
        raise ValueError(f"{text!r} is not a size; write it like 512MB, 2GB or 800KB")
    return int(float(match.group(1)) * _UNITS[unit])


class _Size(click.ParamType[int]):
    name = "size"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_size(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def _split_target(target: str) -> tuple[str, str]:
    module_name, _, class_name = target.partition(":")
    if not module_name or not class_name:
        raise click.BadParameter(
            f"{target!r} is not module:Class; write it like my_package.workers:Crawler",
            param_hint="WORKER",
        )
    return module_name, class_name


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("worker", metavar="WORKER")
@click.option(
    "--workers", "-w", default=1, show_default=True, type=click.IntRange(min=1),
    help="How many worker processes run at the same time.",
)  # fmt: skip
@click.option(
    "--max-memory", type=_Size(), default=None,
    help="Replace a worker whose memory (with its child processes) goes above this, "
    "such as 512MB or 2GB. Default: no limit.",
)  # fmt: skip
@click.option(
    "--log-level", default="INFO", show_default=True,
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    help="How much the supervisor logs (workers log as their config says).",
)  # fmt: skip
@click.option(
    "--metrics-port", type=click.IntRange(min=1, max=65535), default=None,
    help="Serve Prometheus metrics of all the worker processes (task outcomes and "
    "durations, queue depths, live workers) on this port, at /metrics. Default: off.",
)  # fmt: skip
@click.option(
    "--metrics-host", default=metrics.DEFAULT_HOST, show_default=True,
    help="The address --metrics-port listens on: 127.0.0.1 serves this machine only; "
    "0.0.0.0 lets a Prometheus on another machine scrape it.",
)  # fmt: skip
def run(
    worker: str,
    workers: int,
    max_memory: int | None,
    log_level: str,
    metrics_port: int | None,
    metrics_host: str,
) -> None:
    """Run a worker class in several processes and keep them running.

    WORKER is the worker class as module:Class, where module is importable from
    the current directory and Class subclasses sergeant.worker.Worker.

    A worker process that ends (max_tasks_per_run reached, respawn(), a crash,
    a task killed after its timeout, or too much memory) is replaced by a fresh
    one. A task calling stop(), Ctrl-C or SIGTERM stops them all: running tasks
    get their grace period to finish, and tasks not yet started go back to the
    queue.

    When the class's config has schedules, their scheduler runs here too (see
    sergeant schedule): each tick is pushed once however many run.

    \b
    Example: 4 processes of the class Crawler in my_app/workers.py, each
    replaced when it uses more than 512 MB:
        sergeant run my_app.workers:Crawler --workers 4 --max-memory 512MB
    With Prometheus metrics on port 9100:
        sergeant run my_app.workers:Crawler --workers 4 --metrics-port 9100
    Scraped by a Prometheus on another machine:
        sergeant run my_app.workers:Crawler --metrics-port 9100 --metrics-host 0.0.0.0
    """
    module_name, class_name = _split_target(worker)
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s sergeant %(message)s")
    try:
        Supervisor(
            module_name,
            class_name,
            workers,
            max_memory,
            metrics_port=metrics_port,
            metrics_host=metrics_host,
        ).start()
    except SergeantError as exc:
        raise click.ClickException(str(exc)) from exc
