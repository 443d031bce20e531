"""``sergeant stats``, ``sergeant purge`` and ``sergeant push``: look at and act on queues."""

from __future__ import annotations

import json
import time
import typing

import click
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from sergeant.cli._tables import id_column
from sergeant.cli._target import Target, broker_option, resolve
from sergeant.objects import Task
from sergeant.ops import stats as _stats

__all__ = ["purge", "push", "queue_stats", "stats"]


def queue_stats(target: Target, queue: str) -> _stats.QueueStats:
    """Counts, rate and live workers of one queue (see ``sergeant.ops.stats.queue_stats``)."""
    return _stats.queue_stats(target.broker, queue)


_Column = typing.Literal[
    "queue", "ready", "ready_high", "ready_normal", "delayed", "leased", "dead", "done_last_minute"
]
_COLUMNS: tuple[tuple[_Column, str], ...] = (
    ("queue", "queue"),
    ("ready", "ready"),
    ("ready_high", "HIGH"),
    ("ready_normal", "NORMAL"),
    ("delayed", "delayed"),
    ("leased", "leased"),
    ("dead", "dead"),
    ("done_last_minute", "done/min"),
)


def _ago(since: object, now: float) -> str:
    return f"{now - since:.1f}s" if isinstance(since, (int, float)) else "-"


def _progress(progress: object) -> str:
    """A heartbeat's ``current_task_progress`` as ``42% message``, or ``-``."""
    if not isinstance(progress, dict) or not isinstance(progress.get("fraction"), (int, float)):
        return "-"
    message = progress.get("message")
    percent = f"{progress['fraction']:.0%}"
    return f"{percent} {message}" if message else percent


def _tables(rows: list[_stats.QueueStats]) -> Group:
    """The queues table, then one table of the live workers (with their current task)."""
    queues = Table(title=f"sergeant stats  {time.strftime('%H:%M:%S')}")
    for key, title in _COLUMNS:
        queues.add_column(title, justify="left" if key == "queue" else "right")
    for row in rows:
        queues.add_row(*(str(row[key]) for key, _ in _COLUMNS))
    workers = Table(title="live workers")
    live = [(row["queue"], worker) for row in rows for worker in row["workers"]]
    id_column(workers, "worker", (worker.get("id") for _, worker in live))
    workers.add_column("queue", overflow="fold")
    for title in ("up", "tasks done", "done/min"):
        workers.add_column(title, justify="left" if title == "up" else "right")
    id_column(workers, "current task", (worker.get("current_task_id") or "-" for _, worker in live))
    workers.add_column("for")
    workers.add_column("progress", overflow="fold")
    now = time.time()
    for queue, worker in live:
        workers.add_row(
            str(worker.get("id")),
            queue,
            _ago(worker.get("started"), now),
            str(worker.get("tasks_done")),
            str(worker.get("done_last_minute")),
            str(worker.get("current_task_id") or "-"),
            _ago(worker.get("current_task_since"), now),
            _progress(worker.get("current_task_progress")),
        )
    return Group(queues, workers)


def _group_rows(target: Target, names: list[str]) -> dict[str, list[_stats.GroupStats]]:
    """Per queue that has groups, its largest ones (``sergeant.ops.stats.group_stats``)."""
    found = {queue: _stats.group_stats(target.broker, queue) for queue in names}
    return {queue: groups for queue, groups in found.items() if groups}


def _print_groups(console: Console, rows: dict[str, list[_stats.GroupStats]]) -> None:
    """The largest groups of each queue that has any (running, ready)."""
    if not rows:
        return
    table = Table(title=f"largest groups (top {_stats.GROUPS_SHOWN} per queue)")
    for title in ("queue", "group", "running", "ready"):
        table.add_column(title, justify="left" if title in ("queue", "group") else "right")
    for queue, groups in rows.items():
        for group in groups:
            table.add_row(queue, group["group"], str(group["running"]), str(group["ready"]))
    console.print(table)


#: What a JSON value that is not an object is called, in ``push``'s error.
_JSON_KINDS: dict[type, str] = {
    list: "array",
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    type(None): "null",
}


@click.command()
@broker_option
@click.argument("queues", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts instead of a table.")
@click.option("--watch", type=float, default=None, metavar="SECONDS", help="Refresh in place.")
def stats(broker: str, queues: tuple[str, ...], as_json: bool, watch: float | None) -> None:
    """Show ready (HIGH / NORMAL), delayed, leased (running) and dead tasks per queue,
    the tasks done in the last minute, and the live workers with their current task
    and its progress (Worker.set_progress).

    The rate and the workers come from the workers' heartbeats (every 5 s at most),
    so they lag by a few seconds; a worker that exited is gone within 15 s.

    Example: sergeant stats -b redis://localhost:6379/0 emails thumbnails --watch 2
    """
    with resolve(broker) as target:
        names = target.queues(queues)
        if as_json:
            found = {"queues": [queue_stats(target, q) for q in names]}
            click.echo(json.dumps({**found, "groups": _group_rows(target, names)}))
            return
        console = Console()
        if watch is None:
            console.print(_tables([queue_stats(target, q) for q in names]))
            _print_groups(console, _group_rows(target, names))
            return
        try:
            with Live(_tables([queue_stats(target, q) for q in names]), console=console) as live:
                while True:
                    time.sleep(watch)
                    live.update(_tables([queue_stats(target, q) for q in names]))
        except KeyboardInterrupt:  # Ctrl-C is how a watch ends: not an error
            pass


@click.command()
@broker_option
@click.argument("queue", required=False)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def purge(broker: str, queue: str | None, yes: bool) -> None:
    """Delete every ready and delayed task of QUEUE (running and dead tasks stay).

    QUEUE defaults to the queue of a -b module:Class.

    Example: sergeant purge -b sqlite:///tmp/broker.sqlite3 emails --yes
    """
    with resolve(broker) as target:
        queue = target.queue(queue)
        waiting = target.broker.number_of_enqueued_tasks(queue, include_delayed=True)
        if not yes:
            click.confirm(f"Delete {waiting} tasks from queue {queue!r}?", abort=True)
        with Console(stderr=True).status(f"purging {queue!r}"):
            deleted = target.broker.purge_tasks(queue)
        click.echo(f"purged {deleted} tasks from {queue!r}")


@click.command()
@broker_option
@click.argument("queue", required=False)
@click.option(
    "--kwargs", "kwargs_json", required=True, help='The task\'s kwargs as JSON: {"id": 7}'
)
@click.option("--delay", type=float, default=0.0, metavar="SECONDS", help="Hand it out later.")
@click.option("--priority", type=click.Choice(["NORMAL", "HIGH"]), default="NORMAL")
@click.option("--count", type=click.IntRange(min=1), default=1, help="Push this many copies.")
def push(
    broker: str, queue: str | None, kwargs_json: str, delay: float, priority: str, count: int
) -> None:
    """Push a task to QUEUE, as an operator.

    QUEUE defaults to the queue of a -b module:Class. A missing SQLite file is
    created (its directory must exist).

    Example: sergeant push -b redis://localhost:6379/0 emails --kwargs '{"to": "a@b.c"}' --delay 60
    """
    try:
        kwargs = json.loads(kwargs_json)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--kwargs") from exc
    if not isinstance(kwargs, dict):
        raise click.BadParameter(
            f"{kwargs_json!r} is a JSON {_JSON_KINDS.get(type(kwargs), 'value')}; the kwargs "
            'are a JSON object of argument names to values, such as {"id": 7}',
            param_hint="--kwargs",
        )
    tasks = [Task(kwargs=kwargs) for _ in range(count)]
    consumable_from = time.time() + delay if delay > 0 else 0.0
    with resolve(broker, creates=True) as target:
        queue = target.queue(queue)
        target.broker.push_tasks(queue, tasks, priority, consumable_from)  # type: ignore[arg-type]
    for task in tasks:
        click.echo(task.id)
