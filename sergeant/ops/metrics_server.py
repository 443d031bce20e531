"""The supervisor's Prometheus endpoint: its workers' metrics summed, plus queue depths.

``MetricsServer`` makes a fresh ``PROMETHEUS_MULTIPROC_DIR`` for the worker
processes (see :mod:`sergeant.metrics`), serves ``/metrics`` over HTTP on the given
port with a ``MultiProcessCollector`` over that directory and a
:class:`QueueCollector`, and removes the directory when closed. Only imported when
metrics are asked for, so a supervisor without them never loads prometheus-client.

Read from the broker at each scrape (label ``queue``):

* ``sergeant_queue_tasks{state}``: ``ready``, ``delayed``, ``leased`` and ``dead`` tasks.
* ``sergeant_queue_ready_tasks{priority}``: ready tasks by priority (``HIGH``, ``NORMAL``).
* ``sergeant_workers_live``: workers whose heartbeat is alive (any host).
* ``sergeant_broker_up``: 1 when the broker answered this scrape, else 0.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
import typing

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from sergeant import metrics
from sergeant.broker import Broker
from sergeant.errors import SergeantError
from sergeant.ops import stats as _stats

__all__ = ["MetricsServer", "QueueCollector"]

logger = logging.getLogger("sergeant.metrics_server")  # the name it had before the move


class QueueCollector(Collector):
    """Queue depths and live workers of the supervised worker class's queue.

    The worker class is imported at the first scrape (not at start: the workers
    report import errors), to read its queue and broker from ``generate_config()``.

    Args:
        worker_module_name: the module holding the worker class.
        worker_class_name: the worker class.
    """

    def __init__(self, worker_module_name: str, worker_class_name: str) -> None:
        self.worker_module_name = worker_module_name
        self.worker_class_name = worker_class_name
        self._target: tuple[Broker, str] | None = None

    def _load(self) -> tuple[Broker, str]:
        if self._target is None:
            from sergeant.worker.loader import load_worker_class

            if os.getcwd() not in sys.path:  # as the workers' `python -m` does
                sys.path.insert(0, os.getcwd())
            config = load_worker_class(self.worker_module_name, self.worker_class_name)().config
            self._target = Broker.from_config(config.connector, config.encoder), config.name
        return self._target

    def collect(self) -> typing.Iterator[Metric]:
        """The gauges, read from the broker now."""
        up = GaugeMetricFamily("sergeant_broker_up", "1 if the broker answered this scrape.")
        try:
            broker, queue = self._load()
            stats = _stats.queue_stats(broker, queue)
        except (SergeantError, ImportError) as exc:
            logger.warning(
                "metrics scrape could not read the broker: %s",
                exc,
                extra={"event": "metrics_failed"},
            )
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        tasks = GaugeMetricFamily(
            "sergeant_queue_tasks", "Tasks in a queue, by state.", labels=["queue", "state"]
        )
        for state in ("ready", "delayed", "leased", "dead"):
            tasks.add_metric([queue, state], stats[state])
        yield tasks
        ready = GaugeMetricFamily(
            "sergeant_queue_ready_tasks", "Ready tasks, by priority.", labels=["queue", "priority"]
        )
        ready.add_metric([queue, "HIGH"], stats["ready_high"])
        ready.add_metric([queue, "NORMAL"], stats["ready_normal"])
        yield ready
        workers = GaugeMetricFamily(
            "sergeant_workers_live", "Workers with a live heartbeat.", labels=["queue"]
        )
        workers.add_metric([queue], len(stats["workers"]))
        yield workers
        yield from _group_gauges(broker, queue)

    def close(self) -> None:
        """Close the broker connection, if one was opened."""
        if self._target is not None:
            self._target[0].close()


def _group_gauges(broker: Broker, queue: str) -> typing.Iterator[Metric]:
    """Running and ready tasks of the queue's largest groups (none without groups)."""
    groups = _stats.group_stats(broker, queue)
    if not groups:
        return
    family = GaugeMetricFamily(
        "sergeant_group_tasks",
        f"Tasks of the {_stats.GROUPS_SHOWN} largest groups of a queue, by state.",
        labels=["queue", "group", "state"],
    )
    for group in groups:
        family.add_metric([queue, group["group"], "running"], group["running"])
        family.add_metric([queue, group["group"], "ready"], group["ready"])
    yield family


class MetricsServer:
    """Serves the fleet's metrics on ``host:port`` while the supervisor runs.

    Args:
        port: the TCP port to serve ``/metrics`` on.
        worker_module_name: the supervised worker's module.
        worker_class_name: the supervised worker class.
        host: the address to listen on: ``metrics.DEFAULT_HOST`` (this machine only) unless
            Prometheus scrapes from elsewhere (``'0.0.0.0'``: every interface).
    """

    def __init__(
        self,
        port: int,
        worker_module_name: str,
        worker_class_name: str,
        host: str = metrics.DEFAULT_HOST,
    ) -> None:
        self.port = port
        self.host = host
        self.directory = tempfile.mkdtemp(prefix="sergeant-metrics-")
        self._queues = QueueCollector(worker_module_name, worker_class_name)
        registry = CollectorRegistry()
        # prometheus-client leaves this constructor unannotated.
        MultiProcessCollector(registry, path=self.directory)  # type: ignore[no-untyped-call]
        registry.register(self._queues)
        self._server, self._thread = start_http_server(port, addr=host, registry=registry)

    def child_environment(self) -> dict[str, str]:
        """The environment of a worker process: this one plus the metrics variables."""
        return {**os.environ, "PROMETHEUS_MULTIPROC_DIR": self.directory, metrics.ENV_FLAG: "1"}

    def close(self) -> None:
        """Stop serving and delete the workers' metric files."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self._queues.close()
        shutil.rmtree(self.directory, ignore_errors=True)
