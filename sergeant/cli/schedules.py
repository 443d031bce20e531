"""``sergeant schedule module:Class`` (a scheduler with no workers) and ``sergeant
schedules`` (each schedule with its last and next tick)."""

from __future__ import annotations

import json
import logging
import signal
import time
import types
import typing

import click
from rich.console import Console
from rich.table import Table

from sergeant.broker.schedules import ScheduleRecord
from sergeant.cli._target import broker_option, resolve
from sergeant.errors import SergeantError
from sergeant.process.scheduler import load_scheduler

__all__ = ["schedule", "schedules", "schedules_table", "tick_text"]


def tick_text(tick: object) -> str:
    """A tick (Unix seconds) as ``2026-12-01 20:15:00Z``, or ``-``."""
    if not isinstance(tick, (int, float)):
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(tick)) + "Z"


def schedules_table(records: typing.Sequence[ScheduleRecord]) -> Table:
    """The schedules, one row each: queue, name, what, last and next tick (UTC)."""
    table = Table(title="schedules")
    for title in ("queue", "schedule", "what", "last tick", "next tick"):
        table.add_column(title, overflow="fold")
    for record in records:
        table.add_row(
            str(record.get("queue")),
            str(record.get("schedule")),
            str(record.get("what")),
            tick_text(record.get("last_tick")),
            tick_text(record.get("next_tick")),
        )
    return table


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@broker_option
@click.argument("queue", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts instead of a table.")
def schedules(broker: str, queue: str | None, as_json: bool) -> None:
    """List each schedule with its last and next tick (UTC), as its schedulers
    recorded them; only QUEUE's if given (with -b module:Class, that worker's).

    A schedule appears once one of its schedulers (a supervisor, sergeant run, or
    sergeant schedule) has run; it is dropped 7 days after the last one stopped.

    Example: sergeant schedules -b redis://localhost:6379/0
    """
    with resolve(broker) as target:
        chosen = queue if queue is not None else target.default_queue
        records = target.broker.schedule_records(chosen)
    if as_json:
        click.echo(json.dumps({"schedules": records}))
        return
    Console().print(schedules_table(records))


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("worker", metavar="WORKER")
@click.option(
    "--log-level", default="INFO", show_default=True,
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    help="How much the scheduler logs.",
)  # fmt: skip
def schedule(worker: str, log_level: str) -> None:
    """Push the ticks of a worker class's schedules, with no worker processes.

    WORKER is the worker class as module:Class. Every supervisor (sergeant run)
    of the class runs the same scheduler; run this where no supervisor runs, or
    beside them: each tick is pushed once however many schedulers run. Ctrl-C or
    SIGTERM stop it.

    \b
    Example:
        sergeant schedule my_app.workers:Reports
    """
    module_name, _, class_name = worker.partition(":")
    if not module_name or not class_name:
        raise click.BadParameter(
            f"{worker!r} is not module:Class; write it like my_app.workers:Reports",
            param_hint="WORKER",
        )
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s sergeant %(message)s")
    try:
        scheduler = load_scheduler(module_name, class_name)
    except SergeantError as exc:
        raise click.ClickException(str(exc)) from exc
    if scheduler is None:
        raise click.ClickException(
            f"{worker} has no schedules; add some to its generate_config(): "
            "WorkerConfig(schedules=[config.Schedule(every_seconds=60)])"
        )

    def on_signal(signum: int, frame: types.FrameType | None) -> None:
        scheduler.stop()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    try:
        scheduler.run()
    finally:
        scheduler.broker.close()
