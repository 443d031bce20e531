"""Executors run tasks and route each outcome to the worker's hooks."""

from __future__ import annotations

from sergeant.executor._executor import (
    Executor,
    HookTarget,
    Outcome,
    TaskSource,
    noop_hook,
    run_task,
    run_task_with_value,
)
from sergeant.executor.serial import SerialExecutor

__all__ = [
    "Executor",
    "HookTarget",
    "Outcome",
    "SerialExecutor",
    "TaskSource",
    "noop_hook",
    "run_task",
    "run_task_with_value",
]
