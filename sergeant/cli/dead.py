"""``sergeant dead list|show|requeue|purge``: the tasks given up on, and why."""

from __future__ import annotations

import datetime
import json
import typing

import click
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from sergeant.cli._target import broker_option, resolve
from sergeant.connector import DeadLetter
from sergeant.encoder.peek import Peek, jsonable

__all__ = ["dead"]

#: Dead tasks moved back per round trip by ``requeue``.
REQUEUE_CHUNK = 1_000


def _describe(seen: Peek, letter: DeadLetter) -> dict[str, typing.Any]:
    """One dead task as JSON can show it; its kwargs were read without running code."""
    task = seen.task
    return {
        "item_id": letter.item_id,
        "task_id": task.id if task else None,
        "kwargs": jsonable(task.kwargs) if task else None,
        "payload": seen.note,
        "reason": letter.reason,
        "error": letter.error,
        "deliveries": letter.deliveries,
        "dead_at": datetime.datetime.fromtimestamp(
            letter.dead_at, datetime.timezone.utc
        ).isoformat(),
    }


@click.group()
def dead() -> None:
    """Inspect and act on dead tasks (those given up on, with the reason and last error)."""


@dead.command("list")
@broker_option
@click.argument("queue")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def list_dead(broker: str, queue: str, limit: int, as_json: bool) -> None:
    """List the oldest dead tasks of QUEUE.

    Example: sergeant dead list -b redis://localhost:6379/0 emails --limit 20
    """
    with resolve(broker) as target:
        rows = [
            _describe(task, letter) for task, letter in target.broker.peek_dead_tasks(queue, limit)
        ]
    if as_json:
        click.echo(json.dumps(rows))
        return
    table = Table(title=f"dead tasks of {queue!r}")
    for column in ("item_id", "reason", "deliveries", "dead_at", "kwargs"):
        table.add_column(column)
    for row in rows:
        shown = row["payload"] if row["kwargs"] is None else json.dumps(row["kwargs"])
        table.add_row(*(str(row[c]) for c in ("item_id", "reason", "deliveries", "dead_at")), shown)
    Console().print(table)


@dead.command("show")
@broker_option
@click.argument("queue")
@click.argument("item_id")
def show_dead(broker: str, queue: str, item_id: str) -> None:
    """Show one dead task of QUEUE in full, with its last error.

    Example: sergeant dead show -b redis://localhost:6379/0 emails N000000000042
    """
    with resolve(broker) as target:
        found = [
            _describe(task, letter)
            for task, letter in target.broker.peek_dead_tasks(queue, 1_000_000)
            if letter.item_id == item_id
        ]
    if not found:
        raise click.ClickException(
            f"no dead task {item_id!r} in {queue!r}; see `sergeant dead list`"
        )
    click.echo(json.dumps(found[0], indent=2))


@dead.command("requeue")
@broker_option
@click.argument("queue")
@click.option("--limit", type=click.IntRange(min=0), default=0, help="At most this many (0 = all).")
def requeue_dead(broker: str, queue: str, limit: int) -> None:
    """Put dead tasks of QUEUE back in the queue, oldest first, to run again.

    Example: sergeant dead requeue -b redis://localhost:6379/0 emails
    """
    with resolve(broker) as target:
        connector = target.broker.connector
        total = connector.dead_count(queue)
        if limit:
            total = min(limit, total)
        moved = 0
        with Progress(console=Console(stderr=True), transient=True) as progress:
            bar = progress.add_task("requeueing", total=total)
            while moved < total:
                step = connector.requeue_dead(queue, min(REQUEUE_CHUNK, total - moved))
                if step == 0:
                    break
                moved += step
                progress.update(bar, completed=moved)
    click.echo(f"requeued {moved} dead tasks of {queue!r}")


@dead.command("purge")
@broker_option
@click.argument("queue")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def purge_dead(broker: str, queue: str, yes: bool) -> None:
    """Delete every dead task of QUEUE.

    Example: sergeant dead purge -b redis://localhost:6379/0 emails --yes
    """
    with resolve(broker) as target:
        if not yes:
            count = target.broker.connector.dead_count(queue)
            click.confirm(f"Delete {count} dead tasks of {queue!r}?", abort=True)
        deleted = target.broker.connector.purge_dead(queue)
    click.echo(f"purged {deleted} dead tasks of {queue!r}")
