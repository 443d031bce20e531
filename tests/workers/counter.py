"""A plain worker for the ``sergeant run`` test: counts its tasks in the ledger."""

from __future__ import annotations

from tests.workers.scenario import ScenarioWorker

__all__ = ["Worker"]


class Worker(ScenarioWorker):
    """Every task is ``ok``: records ``start``/``done`` in the ledger."""
