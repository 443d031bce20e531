"""Prometheus metrics of worker processes, aggregated by the supervisor.

``sergeant run --metrics-port PORT`` (or ``Supervisor(metrics_port=PORT)``) gives its
workers a fresh ``PROMETHEUS_MULTIPROC_DIR`` and sets ``SERGEANT_METRICS=1``; each
worker process then records into that directory (prometheus-client multiprocess
mode) and the supervisor serves the sum (see ``sergeant.ops.metrics_server``). Without
both variables nothing is recorded and ``prometheus_client`` is never imported.

Recorded by the workers (label ``queue`` on each):

* ``sergeant_tasks_total{outcome}``: tasks settled, by outcome: ``success``,
  ``failure``, ``timeout``, ``retry``, ``requeue``, ``max_retries``, ``interrupted``.
* ``sergeant_task_duration_seconds``: histogram of the time from start to settle.
* ``sergeant_tasks_dead_lettered_total{reason}``: tasks moved to the dead letters
  (``max retries``, ``worker died``, ``killed after timeout``, or a decode error).
* ``sergeant_tasks_killed_total``: tasks whose worker the watchdog killed at the
  hard deadline (recorded by the watchdog process).
"""

from __future__ import annotations

import os
import threading
import time
import typing

if typing.TYPE_CHECKING:
    from prometheus_client import Counter, Histogram

__all__ = ["DEFAULT_HOST", "ENV_FLAG", "TaskMetrics", "enabled", "task_metrics"]

#: Set to ``1`` by the supervisor in its workers' environment when metrics are on.
ENV_FLAG = "SERGEANT_METRICS"
#: The address the supervisor's ``/metrics`` listens on unless told otherwise: this
#: machine only (``'0.0.0.0'`` lets a Prometheus on another machine scrape it).
DEFAULT_HOST = "127.0.0.1"
#: Task duration buckets, in seconds: from a fast Redis task to a long crawl.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


def enabled() -> bool:
    """Whether this process records metrics (the supervisor asked, and gave a directory)."""
    return os.environ.get(ENV_FLAG) == "1" and bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


class TaskMetrics:
    """The metric families of one process; create it through :func:`task_metrics`."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Histogram

        self.tasks: Counter = Counter(
            "sergeant_tasks", "Tasks settled, by outcome.", ["queue", "outcome"]
        )
        self.duration: Histogram = Histogram(
            "sergeant_task_duration_seconds",
            "Seconds from a task's start to its settling.",
            ["queue"],
            buckets=DURATION_BUCKETS,
        )
        self.dead_lettered: Counter = Counter(
            "sergeant_tasks_dead_lettered", "Tasks moved to the dead letters.", ["queue", "reason"]
        )
        self.killed: Counter = Counter(
            "sergeant_tasks_killed", "Tasks whose worker the watchdog killed.", ["queue"]
        )
        self._started: dict[int, float] = {}
        self._lock = threading.Lock()

    def started(self, task_key: int) -> None:
        """A task began (``task_key`` names it until :meth:`settled`)."""
        with self._lock:
            self._started[task_key] = time.perf_counter()

    def settled(self, task_key: int, queue: str, outcome: str) -> None:
        """A task ended with ``outcome`` (an ``Outcome`` value)."""
        with self._lock:
            began = self._started.pop(task_key, None)
        self.tasks.labels(queue, outcome).inc()
        if began is not None:
            self.duration.labels(queue).observe(time.perf_counter() - began)

    def dead_letter(self, queue: str, reason: str) -> None:
        """A task of ``queue`` went to the dead letters for ``reason``."""
        self.dead_lettered.labels(queue, reason).inc()


_METRICS: TaskMetrics | None = None
_METRICS_LOCK = threading.Lock()


def task_metrics() -> TaskMetrics | None:
    """This process's metrics when :func:`enabled`, else None (nothing imported)."""
    global _METRICS
    if not enabled():
        return None
    with _METRICS_LOCK:
        if _METRICS is None:  # prometheus-client refuses to register a name twice
            _METRICS = TaskMetrics()
        return _METRICS
