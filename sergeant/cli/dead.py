"""``sergeant dead list|show|requeue|purge``: the tasks given up on, and why."""

from __future__ import annotations

import datetime
import json
import typing

import click
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from sergeant.broker import DeadLetter, Peek, jsonable
from sergeant.cli._tables import id_column
from sergeant.cli._target import broker_option, resolve

__all__ = ["DeadRow", "dead"]

#: Dead tasks moved back per round trip by ``requeue``.
REQUEUE_CHUNK = 1_000
#: Characters of a task's kwargs shown in the ``dead list`` table.
KWARGS_SHOWN = 120


class DeadRow(typing.TypedDict):
    """One dead task as ``dead list --json`` and ``dead show`` print it, in key order."""

    item_id: str
    #: None when the payload could not be read safely (``payload`` says why).
    task_id: str | None
    kwargs: typing.Any
    #: How the payload was read, or why it is not shown.
    payload: str
    reason: str
    error: str
    deliveries: int
    #: ISO 8601, UTC.
    dead_at: str


def _describe(seen: Peek, letter: DeadLetter) -> DeadRow:
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


def _shorten(text: str) -> str:
    # A few lines of kwargs in the table at most; `dead show` has them in full.
    return text if len(text) <= KWARGS_SHOWN else text[: KWARGS_SHOWN - 1] + "…"


@click.group()
def dead() -> None:
    """Inspect and act on dead tasks (those given up on, with the reason and last error)."""


@dead.command("list")
@broker_option
@click.argument("queue", required=False)
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def list_dead(broker: str, queue: str | None, limit: int, as_json: bool) -> None:
    """List the oldest dead tasks of QUEUE (by default, the queue of a -b module:Class).

    Example: sergeant dead list -b redis://localhost:6379/0 emails --limit 20
    """
    with resolve(broker) as target:
        queue = target.queue(queue)
        rows = [
            _describe(task, letter) for task, letter in target.broker.peek_dead_tasks(queue, limit)
        ]
    if as_json:
        click.echo(json.dumps(rows))
        return
    table = Table(title=f"dead tasks of {queue!r}")
    id_column(table, "item_id", (row["item_id"] for row in rows))
    table.add_column("reason", overflow="fold")
    table.add_column("deliveries", min_width=len("deliveries"))
    table.add_column("dead_at (UTC)", min_width=len("YYYY-MM-DD"), overflow="fold")
    table.add_column("kwargs", overflow="fold")
    for row in rows:
        shown = row["payload"] if row["kwargs"] is None else json.dumps(row["kwargs"])
        dead_at = row["dead_at"][:19].replace("T", " ")  # whole seconds; --json has it all
        table.add_row(
            str(row["item_id"]), str(row["reason"]), str(row["deliveries"]), dead_at,
            _shorten(shown),
        )  # fmt: skip
    Console().print(table)


@dead.command("show")
@broker_option
@click.argument("names", nargs=-1, metavar="[QUEUE] ITEM_ID")
def show_dead(broker: str, names: tuple[str, ...]) -> None:
    """Show one dead task of QUEUE in full, with its last error.

    ITEM_ID is the item_id that `sergeant dead list` shows. QUEUE defaults to the
    queue of a -b module:Class.

    Example: sergeant dead show -b redis://localhost:6379/0 emails N000000000042
    """
    if len(names) not in (1, 2):
        raise click.UsageError("give the ITEM_ID (after the QUEUE, for a broker URL)")
    given, item_id = (None, names[0]) if len(names) == 1 else names
    with resolve(broker) as target:
        queue = target.queue(given)
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
@click.argument("queue", required=False)
@click.option("--limit", type=click.IntRange(min=0), default=0, help="At most this many (0 = all).")
def requeue_dead(broker: str, queue: str | None, limit: int) -> None:
    """Put dead tasks of QUEUE back in the queue, oldest first, to run again.

    QUEUE defaults to the queue of a -b module:Class.

    Example: sergeant dead requeue -b redis://localhost:6379/0 emails
    """
    with resolve(broker) as target:
        queue = target.queue(queue)
        total = target.broker.number_of_dead_tasks(queue)
        if limit:
            total = min(limit, total)
        moved = 0
        with Progress(console=Console(stderr=True), transient=True) as progress:
            bar = progress.add_task("requeueing", total=total)
            while moved < total:
                step = target.broker.requeue_dead_tasks(queue, min(REQUEUE_CHUNK, total - moved))
                if step == 0:
                    break
                moved += step
                progress.update(bar, completed=moved)
    click.echo(f"requeued {moved} dead tasks of {queue!r}")


@dead.command("purge")
@broker_option
@click.argument("queue", required=False)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def purge_dead(broker: str, queue: str | None, yes: bool) -> None:
    """Delete every dead task of QUEUE (by default, the queue of a -b module:Class).

    Example: sergeant dead purge -b redis://localhost:6379/0 emails --yes
    """
    with resolve(broker) as target:
        queue = target.queue(queue)
        if not yes:
            count = target.broker.number_of_dead_tasks(queue)
            click.confirm(f"Delete {count} dead tasks of {queue!r}?", abort=True)
        deleted = target.broker.purge_dead_tasks(queue)
    click.echo(f"purged {deleted} dead tasks of {queue!r}")
