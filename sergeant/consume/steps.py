"""A workflow step at its end: the workflow is advanced (or failed) before the step's
lease is settled, so a crash in between reruns the step rather than losing the
workflow's next step (see ``sergeant.broker.flows``)."""

from __future__ import annotations

import logging

from sergeant.broker import Broker
from sergeant.consume.backoff import retry_call
from sergeant.consume.state import CLOSE_RETRY_SECONDS
from sergeant.control import Outcome
from sergeant.errors import ConnectorError
from sergeant.objects import Task

__all__ = ["FAILED_FOR_GOOD", "end_step"]

logger = logging.getLogger("sergeant.consumer")

#: Outcomes after which a step will not run again: its workflow fails.
FAILED_FOR_GOOD = frozenset(
    {Outcome.FAILURE, Outcome.TIMEOUT, Outcome.MAX_RETRIES, Outcome.CANCELLED}
)


def end_step(broker: Broker, queue: str, task: Task, outcome: Outcome, value: object) -> bool:
    """Advance or fail ``task``'s workflow; False when the broker did not take the
    advance, so the step must not be acknowledged (its rerun advances it)."""
    if outcome is Outcome.SUCCESS:
        try:
            retry_call(
                "advance the workflow", lambda: broker.finish_step(task, value),
                queue, CLOSE_RETRY_SECONDS,
            )  # fmt: skip
        except ConnectorError as exc:
            logger.error(
                "could not advance workflow %s after step %s (%s); the step runs again",
                task.workflow_id, task.id, exc,
                extra={"event": "workflow_advance_failed", "queue": queue},
            )  # fmt: skip
            return False
        return True
    if outcome in FAILED_FOR_GOOD:
        if isinstance(value, BaseException):
            error_type, message = type(value).__name__, str(value)
        else:
            error_type, message = "WorkerMaxRetries", "max retries reached"
        try:
            retry_call(
                "fail the workflow", lambda: broker.fail_flow(task, error_type, message),
                queue, CLOSE_RETRY_SECONDS,
            )  # fmt: skip
        except ConnectorError as exc:
            logger.error(
                "could not record that step %s failed workflow %s (%s)",
                task.id, task.workflow_id, exc,
                extra={"event": "workflow_fail_failed", "queue": queue},
            )  # fmt: skip
    return True
