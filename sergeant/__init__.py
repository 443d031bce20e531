"""Sergeant: a fast, safe and simple distributed task queue.

Subclass ``sergeant.worker.Worker``, return a ``sergeant.config.WorkerConfig`` from
``generate_config()``, implement ``work(task)``, and run it under
``sergeant.supervisor`` (or ``sergeant run module:Class``).
"""

from __future__ import annotations

import importlib
import typing

from sergeant import config, connector, encoder, errors, logging, objects, worker

__all__ = [
    "__version__",
    "config",
    "connector",
    "encoder",
    "errors",
    "logging",
    "objects",
    "supervisor",
    "worker",
]

__version__ = "1.0.0.dev0"


def __getattr__(name: str) -> typing.Any:
    # The supervisor pulls in psutil and subprocess machinery that a producer never
    # needs; it is imported on first access to ``sergeant.supervisor``.
    if name == "supervisor":
        return importlib.import_module("sergeant.supervisor")
    raise AttributeError(f"module 'sergeant' has no attribute {name!r}")
