"""Sergeant: a fast, safe and simple distributed task queue.

Subclass ``sergeant.Worker``, return a ``sergeant.WorkerConfig`` from
``generate_config()``, implement ``work(task)``, and run it under
``sergeant.supervisor`` (or ``sergeant run module:Class``). The 0.27 module paths
(``sergeant.worker``, ``sergeant.config``, ``sergeant.objects``...) keep working.
"""

from __future__ import annotations

import importlib
import typing

from sergeant import config, connector, encoder, errors, logging, objects, worker, workflow
from sergeant.config import Logging, Starvation, Timeouts, WorkerConfig
from sergeant.control import (
    WorkerCancelled,
    WorkerInterrupt,
    WorkerMaxRetries,
    WorkerRequeue,
    WorkerRespawn,
    WorkerRetry,
    WorkerStop,
    WorkerTimedout,
)
from sergeant.errors import (
    ConfigError,
    ConnectionLost,
    ResultTimeout,
    SergeantError,
    TaskCancelled,
    TaskFailed,
)
from sergeant.objects import Progress, Task
from sergeant.worker import Worker

__all__ = [
    "ConfigError",
    "ConnectionLost",
    "Logging",
    "Progress",
    "ResultTimeout",
    "SergeantError",
    "Starvation",
    "Task",
    "TaskCancelled",
    "TaskFailed",
    "Timeouts",
    "Worker",
    "WorkerCancelled",
    "WorkerConfig",
    "WorkerInterrupt",
    "WorkerMaxRetries",
    "WorkerRequeue",
    "WorkerRespawn",
    "WorkerRetry",
    "WorkerStop",
    "WorkerTimedout",
    "__version__",
    "config",
    "connector",
    "encoder",
    "errors",
    "logging",
    "objects",
    "supervisor",
    "worker",
    "workflow",
]

__version__ = "1.0.0.dev0"


def __getattr__(name: str) -> typing.Any:
    # The supervisor pulls in psutil and subprocess machinery that a producer never
    # needs; it is imported on first access to ``sergeant.supervisor``.
    if name == "supervisor":
        return importlib.import_module("sergeant.supervisor")
    raise AttributeError(f"module 'sergeant' has no attribute {name!r}")
