"""Workflows: steps run one after another (``chain``), side by side (``group``), and a
step after a group that gets all their values (a chord, as Celery calls it).

Build one with :func:`step`, :func:`chain` and :func:`group`, push it with
``Worker.push_workflow`` and read it with ``get_result`` and ``workflow_status``::

    from sergeant import workflow

    flow = workflow.chain(
        workflow.step("download", {"url": url}),
        workflow.group(workflow.step("thumbnail", {"size": s}) for s in (64, 256)),
        workflow.step("publish", {"site": "main"}, priority="HIGH"),
    )

Inside ``work(task)``, ``task.previous`` is what the previous item returned (``None``
for the first, a list in group order after a group) and ``task.workflow_id`` names the
workflow. How it holds under faults is in ``docs/concepts/workflows.md``.

This module only describes and plans; ``sergeant.broker`` stores and runs the plan.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Iterable

from sergeant.errors import ConfigError

__all__ = [
    "Chain",
    "Group",
    "Item",
    "Plan",
    "PlannedStep",
    "Step",
    "StepStatus",
    "WorkflowStatus",
    "chain",
    "group",
    "plan",
    "step",
]

#: A ``previous`` template: a step's index, or a list of templates (a group's values).
Template = int | list["Template"] | None


@dataclasses.dataclass(frozen=True)
class Step:
    """One task: its queue, its kwargs and its priority."""

    task_name: str
    kwargs: dict[str, typing.Any]
    priority: str = "NORMAL"


@dataclasses.dataclass(frozen=True)
class Chain:
    """Items run one after another; each gets the previous one's value."""

    items: tuple[Item, ...]


@dataclasses.dataclass(frozen=True)
class Group:
    """Items run side by side; the group's value is the list of theirs, in order."""

    items: tuple[Item, ...]


Item = Step | Chain | Group


def step(
    task_name: str, kwargs: dict[str, typing.Any] | None = None, *, priority: str = "NORMAL"
) -> Step:
    """A task of queue ``task_name`` with ``kwargs``."""
    if not isinstance(task_name, str) or not task_name:
        raise ConfigError(f"workflow.step(task_name) is {task_name!r}; give a queue name")
    if kwargs is not None and not isinstance(kwargs, dict):
        raise TypeError(
            f"workflow.step({task_name!r}, kwargs) is a {type(kwargs).__name__}; pass a dict"
        )
    if priority not in ("NORMAL", "HIGH"):
        raise ConfigError(f"workflow.step priority is {priority!r}; use 'NORMAL' or 'HIGH'")
    return Step(task_name, dict(kwargs or {}), priority)


def chain(*items: Item) -> Chain:
    """``items`` run one after another (each may be a step, a chain or a group)."""
    return Chain(_items("chain", items))


def group(*items: Item | Iterable[Item]) -> Group:
    """``items`` run side by side: ``group(a, b)`` or ``group(iterable)``."""
    if len(items) == 1 and not isinstance(items[0], (Step, Chain, Group)):
        items = tuple(items[0])
    return Group(_items("group", items))


def _items(kind: str, items: typing.Sequence[object]) -> tuple[Item, ...]:
    if not items:
        raise ConfigError(f"workflow.{kind}() needs at least one item")
    for index, item in enumerate(items):
        if not isinstance(item, (Step, Chain, Group)):
            raise TypeError(
                f"workflow.{kind} item {index} is a {type(item).__name__}; use "
                "workflow.step(...), workflow.chain(...) or workflow.group(...)"
            )
    return tuple(typing.cast(Item, item) for item in items)


@dataclasses.dataclass
class PlannedStep:
    """A step of a planned workflow.

    Attributes:
        index: its position in :attr:`Plan.steps` (also its node and member number).
        step: what runs.
        template: how its ``previous`` is built from its predecessors' values.
        needs: its predecessors' indexes (empty: pushed at once).
        then: the indexes of the steps waiting for it (and :attr:`Plan.end` if it is last).
    """

    index: int
    step: Step
    template: Template
    needs: list[int]
    then: list[int] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Plan:
    """A workflow flattened into steps; :attr:`end` is the node the last steps advance."""

    steps: list[PlannedStep]
    result: Template

    @property
    def end(self) -> int:
        """The node number of the workflow's end (after every step)."""
        return len(self.steps)

    @property
    def last(self) -> list[int]:
        """The steps whose values make the workflow's result."""
        return _flatten(self.result)


def plan(item: Item) -> Plan:
    """Flatten ``item`` into steps with their predecessors and ``previous`` templates."""
    if not isinstance(item, (Step, Chain, Group)):
        raise TypeError(
            f"push_workflow takes a workflow.step/chain/group, not a {type(item).__name__}"
        )
    steps: list[PlannedStep] = []

    def place(item: Item, before: Template) -> Template:
        if isinstance(item, Step):
            index = len(steps)
            steps.append(PlannedStep(index, item, before, _flatten(before)))
            return index
        if isinstance(item, Chain):
            for part in item.items:
                before = place(part, before)
            return before
        return [place(part, before) for part in item.items]

    result = place(item, None)
    flow = Plan(steps, result)
    for planned in steps:
        for need in planned.needs:
            steps[need].then.append(planned.index)
    for last in flow.last:
        steps[last].then.append(flow.end)
    return flow


def _flatten(template: Template) -> list[int]:
    if template is None:
        return []
    if isinstance(template, int):
        return [template]
    return [index for part in template for index in _flatten(part)]


def fill(template: Template, values: typing.Mapping[int, typing.Any]) -> typing.Any:
    """``template`` with each step index replaced by that step's value."""
    if template is None:
        return None
    if isinstance(template, int):
        return values[template]
    return [fill(part, values) for part in template]


#: What ``StepStatus.state`` may be.
StepState = typing.Literal["waiting", "pending", "succeeded", "failed", "never ran"]
#: What ``WorkflowStatus.state`` may be.
FlowState = typing.Literal["running", "succeeded", "failed"]


class StepStatus(typing.NamedTuple):
    """One step of ``workflow_status``.

    Attributes:
        task_id: the step's task id.
        queue: the queue it runs in.
        state: ``'waiting'`` for earlier steps, ``'pending'`` (queued or running),
            ``'succeeded'``, ``'failed'``, or ``'never ran'`` (the workflow failed first).
    """

    task_id: str
    queue: str
    state: StepState


class WorkflowStatus(typing.NamedTuple):
    """What ``Worker.workflow_status`` returns.

    Attributes:
        workflow_id: the workflow's id.
        state: ``'running'``, ``'succeeded'`` or ``'failed'``.
        steps: each step, in the order the workflow names them.
    """

    workflow_id: str
    state: FlowState
    steps: list[StepStatus]
