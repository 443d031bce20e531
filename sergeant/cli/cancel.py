"""``sergeant cancel``: cancel a task or a workflow from the shell."""

from __future__ import annotations

import click

from sergeant.broker.flows import FLOW_PREFIX
from sergeant.cli._target import broker_option, resolve

__all__ = ["cancel"]


@click.command()
@broker_option
@click.argument("task_id")
@click.argument("queue", required=False)
def cancel(broker: str, task_id: str, queue: str | None) -> None:
    """Cancel TASK_ID (a task of QUEUE, or a workflow id).

    A queued or delayed task is removed and never runs; a running one is stopped at
    its worker's next heartbeat (WorkerCancelled, then a kill after grace_period).
    QUEUE defaults to the queue of a -b module:Class; a workflow needs none.

    Example: sergeant cancel -b redis://localhost:6379/0 5f1c0e9a3b7d2c41-17 emails
    """
    with resolve(broker) as target:
        if task_id.startswith(FLOW_PREFIX):
            cancelled = target.broker.cancel_flow(task_id)
        else:
            cancelled = target.broker.cancel_task(target.queue(queue), task_id)
    if not cancelled:
        raise click.ClickException(f"{task_id} has already ended: nothing to cancel")
    click.echo(f"cancelled {task_id}")
