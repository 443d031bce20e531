"""The supervisor: runs N worker processes and replaces each one that ends.

Programmatic use::

    Supervisor("my_workers", "Crawler", concurrent_workers=4,
               max_worker_memory_usage=512 * 1024 * 1024).start()

Command line::

    python -m sergeant.supervisor --worker-module my_workers --worker-class Crawler \\
        --concurrent-workers 4 [--max-worker-memory-usage BYTES]

Each worker is a fresh interpreter (``python -m sergeant.slave``) whose stdout and
stderr pass through. A worker that ends (``max_tasks_per_run``, ``respawn()``, a
crash, a hard kill by its watchdog, or memory over the limit, checked while its
tasks run) is replaced; repeated failures back off. ``stop()`` in a task, SIGTERM
or SIGINT stop the fleet gracefully: running tasks get their grace period, then
are killed, and tasks pulled but not started go back to the queue. A worker that
cannot be imported or configured ends the supervisor with one clear sentence.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import types
import typing

if typing.TYPE_CHECKING:
    from sergeant.ops.metrics_server import MetricsServer

from sergeant import metrics
from sergeant.broker import running as _running
from sergeant.broker.running_ids import ids_path
from sergeant.errors import ConfigError, SergeantError, WorkerImportError
from sergeant.killer.process import kill_mark_path, kill_tree, take_kill_mark
from sergeant.process.cancels import KILLED_FOR as CANCEL_KILL
from sergeant.process.leases import Death, LeaseKeeper, death_reason
from sergeant.process.policy import ExitCode, SlaveStatus, decide, describe_exit
from sergeant.process.scheduler import start_scheduler
from sergeant.process.slots import Slot, tree_rss

__all__ = ["Supervisor", "SupervisorState", "tree_rss"]

#: Seconds between checks of the worker processes.
POLL_SECONDS = 0.05
#: Seconds between memory measurements of each worker.
MEMORY_CHECK_SECONDS = 0.5
#: A worker that lived this long resets its slot's failure count.
STABLE_SECONDS = 60.0
#: Grace period assumed for a worker that has not reported its own yet.
DEFAULT_GRACE_SECONDS = 10.0
#: Extra seconds, past the grace period, before a stopping worker is killed.
SHUTDOWN_MARGIN_SECONDS = 1.0
#: Longest wait at shutdown for the last dead workers' leases to be settled.
SETTLE_AT_STOP_SECONDS = 10.0


class SupervisorState(enum.Enum):
    """Lifecycle of a ``Supervisor``: each instance runs once."""

    NEW = "new"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"


class Supervisor:
    """Runs ``concurrent_workers`` processes of one worker class, replacing those that end.

    Args:
        worker_module_name: the module holding the worker class, such as ``'my.workers'``.
        worker_class_name: the ``sergeant.worker.Worker`` subclass in it.
        concurrent_workers: how many worker processes run at once.
        max_worker_memory_usage: bytes of resident memory (the worker plus its
            children) above which a worker is killed and replaced; None = no limit.
        logger: where to log; defaults to ``logging.getLogger('sergeant.supervisor')``.
        metrics_port: serve Prometheus metrics of the whole fleet on this TCP port
            (see ``sergeant.ops.metrics_server``); None = no metrics.
        metrics_host: the address the metrics listen on; the default,
            ``'127.0.0.1'``, serves this machine only, ``'0.0.0.0'`` every interface.
    """

    def __init__(
        self,
        worker_module_name: str,
        worker_class_name: str,
        concurrent_workers: int,
        max_worker_memory_usage: int | None = None,
        logger: logging.Logger | None = None,
        metrics_port: int | None = None,
        metrics_host: str = metrics.DEFAULT_HOST,
    ) -> None:
        if isinstance(concurrent_workers, bool) or not isinstance(concurrent_workers, int):
            raise ConfigError(f"concurrent_workers is {concurrent_workers!r}; use an integer >= 1")
        if concurrent_workers < 1:
            raise ConfigError(f"concurrent_workers is {concurrent_workers!r}; use an integer >= 1")
        if max_worker_memory_usage is not None and max_worker_memory_usage <= 0:
            raise ConfigError(
                f"max_worker_memory_usage is {max_worker_memory_usage!r}; use bytes > 0 or None"
            )
        self.worker_module_name = worker_module_name
        self.worker_class_name = worker_class_name
        self.concurrent_workers = concurrent_workers
        self.max_worker_memory_usage = max_worker_memory_usage
        self.metrics_port = metrics_port
        self.metrics_host = metrics_host
        self._metrics: MetricsServer | None = None
        self.logger = logger or logging.getLogger("sergeant.supervisor")
        self.state = SupervisorState.NEW
        self._slots: list[Slot] = []
        self._stop_requested = False
        self._kill_now = False
        self._fatal: SergeantError | None = None
        self._keeper = LeaseKeeper(self.logger)

    def start(self) -> None:
        """Run the fleet until ``stop()``, a signal, or a task's ``stop()``; then stop it.

        Raises:
            WorkerImportError: the worker module or class cannot be imported.
            ConfigError: the worker's configuration is invalid.
            RuntimeError: this supervisor was already started.
        """
        if self.state is not SupervisorState.NEW:
            raise RuntimeError(f"this Supervisor is {self.state.value}; create a new one to start")
        self.state = SupervisorState.RUNNING
        directory = tempfile.mkdtemp(prefix="sergeant-supervisor-")
        restore = self._install_signal_handlers()
        self._keeper.start()
        scheduler = None
        try:
            scheduler = start_scheduler(self.worker_module_name, self.worker_class_name)
            if self.metrics_port is not None:
                # Imported only here: a supervisor without metrics never loads prometheus-client.
                from sergeant.ops.metrics_server import MetricsServer

                self._metrics = MetricsServer(
                    self.metrics_port,
                    self.worker_module_name,
                    self.worker_class_name,
                    self.metrics_host,
                )
            self._slots = [
                Slot(i, os.path.join(directory, f"worker-{i}.json"))
                for i in range(self.concurrent_workers)
            ]
            self._supervise()
        finally:
            self.state = SupervisorState.STOPPING
            if scheduler is not None:
                scheduler.stop()
            self._stop_fleet()
            self._keeper.settle_now(SETTLE_AT_STOP_SECONDS)
            self._keeper.stop()
            restore()
            if self._metrics is not None:
                self._metrics.close()
            shutil.rmtree(directory, ignore_errors=True)
            self.state = SupervisorState.STOPPED
        if self._fatal is not None:
            raise self._fatal

    def stop(self) -> None:
        """Ask the fleet to stop gracefully; a second call kills the workers at once."""
        if self._stop_requested:
            self._kill_now = True
        self._stop_requested = True

    @property
    def worker_pids(self) -> list[int]:
        """Pids of the worker processes running now."""
        return [slot.process.pid for slot in self._slots if slot.process is not None]

    def _install_signal_handlers(self) -> typing.Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None  # signals only reach the main thread; stop() still works
        previous = {
            signum: signal.signal(signum, self._on_signal)
            for signum in (signal.SIGTERM, signal.SIGINT)
        }

        def restore() -> None:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

        return restore

    def _on_signal(self, signum: int, frame: types.FrameType | None) -> None:
        self.stop()

    def _supervise(self) -> None:
        next_memory_check = time.monotonic()
        while not self._stop_requested:
            now = time.monotonic()
            for slot in self._slots:
                self._tend(slot, now)
            if self.max_worker_memory_usage is not None and now >= next_memory_check:
                self._check_memory(self.max_worker_memory_usage)
                next_memory_check = now + MEMORY_CHECK_SECONDS
            time.sleep(POLL_SECONDS)

    def _tend(self, slot: Slot, now: float) -> None:
        if slot.process is None:
            if slot.respawn_at is not None and now >= slot.respawn_at and not self._stop_requested:
                self._spawn(slot)
            return
        exit_code = slot.process.poll()
        if exit_code is not None:
            self._handle_exit(slot, exit_code, now)
        elif not slot.status_seen:
            # Written once at start; leases None (at-most-once) needs no keeping.
            status = SlaveStatus.load(slot.status_path)
            if status is not None:
                slot.status_seen = True
                if status.leases is not None:
                    self._keeper.alive(slot.process.pid, status.leases, slot.running_path)

    def _spawn(self, slot: Slot) -> None:
        running = slot.running_path
        for stale in (slot.status_path, running, ids_path(running), kill_mark_path(running)):
            with contextlib.suppress(FileNotFoundError):
                os.remove(stale)
        slot.status_seen = False
        slot.process = subprocess.Popen(
            [
                sys.executable, "-m", "sergeant.slave",
                "--worker-module", self.worker_module_name,
                "--worker-class", self.worker_class_name,
                "--status-file", slot.status_path,
                "--supervisor-pid", str(os.getpid()),
                "--running-file", slot.running_path,
            ],
            env=self._metrics.child_environment() if self._metrics is not None else None,
        )  # fmt: skip
        slot.started_at, slot.respawn_at, slot.killed_for_memory = time.monotonic(), None, False
        self.logger.info(
            "worker %d started (pid %d)", slot.index, slot.process.pid,
            extra={"event": "worker_started", "pid": slot.process.pid},
        )  # fmt: skip

    def _handle_exit(self, slot: Slot, exit_code: int, now: float) -> None:
        assert slot.process is not None
        pid, slot.process = slot.process.pid, None
        status = SlaveStatus.load(slot.status_path)
        killed_for = "over the memory limit" if slot.killed_for_memory else None
        if self._keeper.killed_for_cancel(pid):
            killed_for = CANCEL_KILL
        death = self._death(slot, pid, status, exit_code, killed_for)
        if now - slot.started_at >= STABLE_SECONDS:
            slot.failures = 0
        decision = decide(exit_code, status, slot.failures, task_caused=death is not None)
        slot.failures = slot.failures + 1 if decision.failure else 0
        slot.respawn_at = now + decision.delay_seconds if decision.respawn else None
        reason = killed_for or decision.reason
        if death is not None:
            reason += f", while running a task ({death.reason}): charged to it"
        level = logging.WARNING if decision.failure else logging.INFO
        self.logger.log(
            level,
            "worker %d (pid %d) ended: %s%s",
            slot.index,
            pid,
            reason,
            f"; respawning in {decision.delay_seconds:.1f}s" if decision.respawn else "",
            extra={"event": "worker_ended", "pid": pid, "exit_code": exit_code},
        )
        if status is not None and status.threads_left:
            self.logger.warning(
                "worker %d (pid %d) left threads that refused to stop: %s",
                slot.index, pid, ", ".join(status.threads_left),
                extra={"event": "threads_left", "pid": pid},
            )  # fmt: skip
        if decision.fatal_message is not None and self._fatal is None:
            error = ConfigError if exit_code == ExitCode.CONFIG_ERROR else WorkerImportError
            self._fatal = error(decision.fatal_message)
        if decision.stop_fleet:
            self._stop_requested = True

    def _death(
        self,
        slot: Slot,
        pid: int,
        status: SlaveStatus | None,
        exit_code: int,
        killed_for: str | None,
    ) -> Death | None:
        """Hand a dead process's leases to the keeper; the Death when a task was running
        (or the process charged one itself before ending), else None."""
        running = _running.read_running(slot.running_path)
        for path in (slot.running_path, ids_path(slot.running_path)):
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
        note = take_kill_mark(slot.running_path)
        leases = status.leases if status is not None else None
        if leases is None:
            self._keeper.died(pid, None)
            return None
        reason = death_reason(exit_code, note is not None, killed_for)
        death = Death(leases, running, reason, note or "")
        self._keeper.died(pid, death)
        return death if running else None

    def _check_memory(self, limit: int) -> None:
        for slot in self._slots:
            if slot.process is None or slot.process.poll() is not None:
                continue
            used = tree_rss(slot.process.pid)
            if used > limit:
                self.logger.warning(
                    "worker %d (pid %d) uses %d bytes, over the %d-byte limit; killing it",
                    slot.index, slot.process.pid, used, limit,
                    extra={"event": "worker_over_memory", "pid": slot.process.pid},
                )  # fmt: skip
                slot.killed_for_memory = True
                kill_tree(slot.process.pid)

    def _stop_fleet(self) -> None:
        """SIGTERM every worker, wait for their grace periods, then kill what is left."""
        live = [slot for slot in self._slots if slot.process is not None]
        statuses = [SlaveStatus.load(slot.status_path) for slot in live]
        graces = [status.grace_period for status in statuses if status is not None]
        grace = max(graces, default=DEFAULT_GRACE_SECONDS)
        for slot in live:
            assert slot.process is not None
            with contextlib.suppress(ProcessLookupError):
                slot.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace + SHUTDOWN_MARGIN_SECONDS
        while not self._kill_now and time.monotonic() < deadline:
            if all(slot.process is None or slot.process.poll() is not None for slot in live):
                break
            time.sleep(POLL_SECONDS)
        for slot in live:
            assert slot.process is not None
            killed_for = None
            if slot.process.poll() is None:
                self.logger.warning(
                    "worker %d (pid %d) did not stop within its grace period; killing it",
                    slot.index, slot.process.pid, extra={"event": "worker_killed"},
                )  # fmt: skip
                kill_tree(slot.process.pid)
                killed_for = "after its grace period at shutdown"
            slot.process.wait()
            status = SlaveStatus.load(slot.status_path)
            self._death(slot, slot.process.pid, status, slot.process.returncode, killed_for)
            self.logger.info(
                "worker %d (pid %d) stopped: %s",
                slot.index, slot.process.pid, describe_exit(slot.process.returncode),
                extra={"event": "worker_stopped", "pid": slot.process.pid},
            )  # fmt: skip
            slot.process = None
