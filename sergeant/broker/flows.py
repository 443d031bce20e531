"""Workflows over the broker: push a plan, advance it as steps succeed, read it back.

``push_workflow`` stores the plan (``sergeant-workflow:<id>``, JSON), holds every step
that waits for others (``Connector.hold``), holds the workflow's end (an empty
payload that only counts the last steps), and pushes the first steps. Each step's
envelope carries its place (``Task._flow``): its node, its ``previous`` template and
the nodes it advances. When a step succeeds, the consumer calls
:meth:`Flows.finish_step` *before* acknowledging it: each ``Connector.advance`` records
the step's value once and pushes the next step in the same atomic step when it was
the last one needed. A crash between the advances and the acknowledgement reruns the
step; its advances then change nothing, so the next step is pushed exactly once. The
advance that completes the end stores the workflow's result under the workflow id.
"""

from __future__ import annotations

import collections
import logging
import time
import typing

import orjson

from sergeant import workflow
from sergeant.broker.results import DeadLookup, ResultStore, result_key
from sergeant.connector import Connector, Priority, Waiting
from sergeant.encoder import Encoder
from sergeant.objects import Task, new_task_id

__all__ = ["FLOW_PREFIX", "Flows", "plan_key"]

logger = logging.getLogger("sergeant.broker")

#: Every workflow id starts with this, so ``get_result`` knows one when it sees it.
FLOW_PREFIX = "flow-"


def plan_key(flow_id: str) -> str:
    """The key under which a workflow's plan is stored."""
    return f"sergeant-workflow:{flow_id}"


class Flows:
    """Workflows over ``connector`` with ``encoder`` (a mixin of ``Broker``)."""

    connector: Connector
    encoder: Encoder

    if typing.TYPE_CHECKING:

        def request_cancel(self, queue: str, task_ids: typing.Sequence[str]) -> None: ...

        def remove_waiting_tasks(
            self, queue: str, task_ids: typing.Collection[str]
        ) -> list[Waiting]: ...

    # -- pushing ----------------------------------------------------------------

    def push_flow(self, item: workflow.Item, trace_id: str | None, ttl_seconds: float) -> str:
        """Store the plan of ``item``, hold its later steps, push its first ones."""
        planned = workflow.plan(item)
        flow_id = FLOW_PREFIX + new_task_id()
        ids = [f"{flow_id}.{step.index}" for step in planned.steps]
        end, last = planned.end, planned.last
        home = planned.steps[last[0]].step.task_name
        record = {
            "steps": [[ids[s.index], s.step.task_name, s.needs] for s in planned.steps],
            "end": [home, end, last],
            "ttl": ttl_seconds,
        }
        self.connector.key_set(plan_key(flow_id), orjson.dumps(record), ttl_seconds)

        def place(s: workflow.PlannedStep) -> dict[str, typing.Any]:
            then = [
                [planned.steps[n].step.task_name if n != end else home, n, s.index] for n in s.then
            ]
            flow: dict[str, typing.Any] = {
                "f": flow_id, "n": s.index, "q": s.step.task_name, "t": s.template,
                "x": then, "ttl": ttl_seconds,
            }  # fmt: skip
            if end in s.then:
                flow["end"], flow["r"] = end, planned.result
            return flow

        now = time.time()
        payloads = self.encoder.encode_steps(
            ids, [s.step.kwargs for s in planned.steps],
            [place(s) for s in planned.steps], trace_id, now,
        )  # fmt: skip
        # Hold first, then push: a first step that ends at once finds its next held.
        self.connector.hold(home, flow_id, end, b"", len(last), "NORMAL", ttl_seconds)
        first: dict[tuple[str, Priority], list[bytes]] = collections.defaultdict(list)
        for s in planned.steps:
            priority = typing.cast(Priority, s.step.priority)
            if s.needs:
                self.connector.hold(
                    s.step.task_name, flow_id, s.index, payloads[s.index],
                    len(s.needs), priority, ttl_seconds,
                )  # fmt: skip
            else:
                first[(s.step.task_name, priority)].append(payloads[s.index])
        for (queue, priority), batch in first.items():
            self.connector.push_many(queue, batch, priority)
        return flow_id

    # -- running ----------------------------------------------------------------

    @property
    def steps_seen(self) -> bool:
        """True once this broker decoded a workflow step."""
        return self.encoder.steps_decoded != 0

    def fill_previous(self, queue: str, tasks: typing.Iterable[Task]) -> None:
        """Set ``previous`` on the workflow steps among ``tasks`` (leased from ``queue``)."""
        loads = self.encoder.serializer.loads
        for task in tasks:
            flow = task._flow
            if flow is None or flow.get("t") is None:
                continue
            raw = self.connector.flow_values(queue, flow["f"], flow["n"])
            values = {member: loads(data) for member, data in raw.items()}
            try:
                task.previous = workflow.fill(flow["t"], values)
            except KeyError:  # its records expired: the workflow outlived its TTL
                task.previous = None

    def finish_step(self, task: Task, value: object) -> None:
        """Record that workflow step ``task`` succeeded with ``value``: advance every
        node waiting for it (pushing each next step whose last need this was) and, at
        the end, store the workflow's result. Idempotent: a rerun changes nothing.

        Raises:
            ConnectorError: the broker did not take it; the step must not be
                acknowledged (its rerun finishes it).
        """
        flow = task._flow
        assert flow is not None
        flow_id, ttl = flow["f"], float(flow["ttl"])
        dumps = self.encoder.serializer.dumps
        try:
            data = dumps(value)
        except Exception as exc:
            message = f"the return value cannot be encoded with {self.encoder.serializer.name!r}"
            self.fail_flow(task, "EncodingError", f"{message}: {exc}")
            return
        for queue, node, member in flow["x"]:
            complete = self.connector.advance(queue, flow_id, node, member, data, ttl)
            if node == flow.get("end") and complete:
                self._store_result(flow_id, queue, node, flow["r"], ttl)

    def _store_result(
        self, flow_id: str, queue: str, end: int, template: typing.Any, ttl: float
    ) -> None:
        loads, dumps = self.encoder.serializer.loads, self.encoder.serializer.dumps
        raw = self.connector.flow_values(queue, flow_id, end)
        values = {member: loads(data) for member, data in raw.items()}
        record = {"ok": True, "value": workflow.fill(template, values)}
        self.connector.key_set_notify(result_key(flow_id), dumps(record), ttl)

    def fail_flow(self, task: Task, error_type: str, message: str) -> None:
        """Workflow step ``task`` failed for good: the workflow fails with it (its
        result names the step), and no later step is pushed."""
        flow = task._flow
        assert flow is not None
        queue = flow.get("q", "")
        text = f"step {task.id} of queue {queue!r} failed: {error_type}: {message}"
        record = {"ok": False, "type": error_type, "message": text, "step": task.id}
        dumps = self.encoder.serializer.dumps
        self.connector.key_set_notify(result_key(flow["f"]), dumps(record), float(flow["ttl"]))

    # -- reading ----------------------------------------------------------------

    def flow_plan(self, flow_id: str) -> dict[str, typing.Any] | None:
        """The stored plan of a workflow, or None (unknown or expired)."""
        data = self.connector.key_get(plan_key(flow_id))
        return None if data is None else typing.cast(dict[str, typing.Any], orjson.loads(data))

    def fetch_flow(self, results: ResultStore, flow_id: str, timeout: float | None) -> object:
        """The workflow's result, waited for as ``ResultStore.fetch`` waits for a task's;
        a step found in the dead letters of its queue fails it at once."""
        plan = self.flow_plan(flow_id)
        lookups = None
        if plan is not None:
            lookups = [
                DeadLookup(self.connector, self.encoder, queue, frozenset(ids))
                for queue, ids in _steps_by_queue(plan).items()
            ]
        home = plan["end"][0] if plan is not None else ""
        return results.fetch(flow_id, timeout, home, lookups)

    def flow_status(self, flow_id: str) -> workflow.WorkflowStatus:
        """Where the workflow and each of its steps stand (see ``WorkflowStatus``).

        Raises:
            KeyError: no such workflow (never pushed, or its records expired).
        """
        plan = self.flow_plan(flow_id)
        if plan is None:
            raise KeyError(f"no workflow {flow_id!r}: never pushed here, or its records expired")
        steps: list[list[typing.Any]] = plan["steps"]
        home, end, last = plan["end"]
        data = self.connector.key_get(result_key(flow_id))
        record = None if data is None else self.encoder.serializer.loads(data)
        failed = self._dead_steps(plan)
        if record is not None and not record.get("ok"):
            failed.add(record.get("step"))
        waiting_for: dict[int, list[tuple[str, int]]] = collections.defaultdict(list)
        for index, (_, queue, needs) in enumerate(steps):
            for need in needs:
                waiting_for[need].append((queue, index))
        for index in last:
            waiting_for[index].append((home, end))
        flow_failed = bool(failed) or (record is not None and not record.get("ok"))
        out = []
        for index, (step_id, queue, needs) in enumerate(steps):
            done = any(
                index in self.connector.flow_values(q, flow_id, node)
                for q, node in waiting_for[index][:1]
            )
            state: workflow.StepState
            if done:
                state = "succeeded"
            elif step_id in failed:
                state = "failed"
            elif not needs or self.connector.flow_released(queue, flow_id, index):
                state = "pending"
            else:
                state = "never ran" if flow_failed else "waiting"
            out.append(workflow.StepStatus(step_id, queue, state))
        flow_state: workflow.FlowState = (
            "failed" if flow_failed else "succeeded" if record is not None else "running"
        )
        return workflow.WorkflowStatus(flow_id, flow_state, out)

    def _dead_steps(self, plan: dict[str, typing.Any]) -> set[str | None]:
        """The ids of the steps found in the dead letters of their queues."""
        found: set[str | None] = set()
        for queue, ids in _steps_by_queue(plan).items():
            found |= DeadLookup(self.connector, self.encoder, queue, frozenset(ids)).find_all()
        return found

    def cancel_flow(self, flow_id: str) -> bool:
        """Cancel every step of a workflow that has not finished, and the workflow
        itself (``get_result`` raises TaskCancelled); False when it has ended."""
        from sergeant.broker.cancel import CANCELLED

        plan = self.flow_plan(flow_id)
        if plan is None or self.connector.key_get(result_key(flow_id)) is not None:
            return False
        record = {"ok": False, "type": CANCELLED, "message": f"workflow {flow_id} was cancelled"}
        dumps = self.encoder.serializer.dumps
        self.connector.key_set_notify(result_key(flow_id), dumps(record), float(plan["ttl"]))
        for queue, ids in _steps_by_queue(plan).items():
            # The waiting steps are removed; the workers are asked to stop the others
            # and not to start those held yet (pushed when their needs succeed).
            self.remove_waiting_tasks(queue, ids)
            self.request_cancel(queue, ids)
        return True


def _steps_by_queue(plan: dict[str, typing.Any]) -> dict[str, list[str]]:
    """A plan's step ids, by queue."""
    by_queue: dict[str, list[str]] = collections.defaultdict(list)
    for step_id, queue, _ in plan["steps"]:
        by_queue[queue].append(step_id)
    return by_queue
