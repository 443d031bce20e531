"""A worker module that imports fine but whose worker cannot start or has no class."""

from __future__ import annotations

from sergeant import config
from sergeant.worker import Worker

__all__ = ["CrashingWorker", "InMemoryWorker"]


class CrashingWorker(Worker):
    """Crashes while it starts: the supervisor must back off, not respawn in a hot loop."""

    def generate_config(self) -> config.WorkerConfig:
        raise RuntimeError("this worker always crashes at start-up")


class InMemoryWorker(Worker):
    """Uses the in-process ``memory`` broker, which supervised processes cannot share."""

    def generate_config(self) -> config.WorkerConfig:
        return config.WorkerConfig(name="memory", connector=config.Connector({}, type="memory"))
