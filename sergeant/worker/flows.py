"""``Worker.push_workflow`` and ``Worker.workflow_status`` (a mixin of ``Worker``);
``get_result`` takes workflow ids too (see ``sergeant.worker.produce``)."""

from __future__ import annotations

import typing

from sergeant import workflow
from sergeant.broker import Broker
from sergeant.broker.flows import FLOW_PREFIX
from sergeant.config import WorkerConfig

__all__ = ["Workflows"]

#: Seconds a workflow keeps its records (values, plan, result) after it ends.
DEFAULT_WORKFLOW_TTL_SECONDS = 86_400.0


class Workflows:
    """Pushing and reading workflows through the broker."""

    broker: Broker
    config: WorkerConfig

    if typing.TYPE_CHECKING:

        def get_trace_id(self) -> str | None: ...

    def push_workflow(
        self, flow: workflow.Item, result_ttl_seconds: float = DEFAULT_WORKFLOW_TTL_SECONDS
    ) -> str:
        """Push a workflow (``workflow.step``, ``chain`` or ``group``); returns its id.

        The first steps are pushed now; each later one when the steps before it
        succeeded. ``get_result(flow_id)`` returns the last item's value (a list, in
        order, for a group) or raises ``TaskFailed`` naming the step that failed;
        ``workflow_status(flow_id)`` says where each step stands.

        Args:
            flow: what to run.
            result_ttl_seconds: how long the workflow keeps its steps' values, its
                plan and its result (whatever the workers' ``result_ttl_seconds``);
                its records expire together this long after its last step.

        Raises:
            TypeError, sergeant.errors.ConfigError: ``flow`` is not a workflow item,
                or a step is malformed; nothing is pushed.
        """
        if not result_ttl_seconds > 0:
            raise ValueError(
                f"push_workflow(result_ttl_seconds) is {result_ttl_seconds!r}; give seconds > 0"
            )
        return self.broker.push_flow(flow, self.get_trace_id(), float(result_ttl_seconds))

    def cancel(self, task_id: str, task_name: str | None = None) -> bool:
        """Cancel a task (or a workflow, by its id); returns False when it has ended.

        A task still queued or delayed is removed and never runs. A running one gets
        ``WorkerCancelled`` raised in it (routed to ``on_cancel``) at its worker's next
        heartbeat, and its worker is killed if it still runs ``grace_period`` later. A
        task handed out later (prefetched, redelivered) is not started. ``get_result``
        then raises ``TaskCancelled``. A workflow's steps that have not finished are all
        cancelled, and no later step runs.

        Args:
            task_id: an id from ``push_task``/``push_tasks``, or from ``push_workflow``.
            task_name: the task's queue; None for this worker's own (not needed for a
                workflow).
        """
        if task_id.startswith(FLOW_PREFIX):
            return self.broker.cancel_flow(task_id)
        return self.broker.cancel_task(task_name or self.config.name, task_id)

    def workflow_status(self, flow_id: str) -> workflow.WorkflowStatus:
        """Where workflow ``flow_id`` and each of its steps stand.

        Raises:
            KeyError: no such workflow (never pushed to this broker, or expired).
        """
        return self.broker.flow_status(flow_id)
