"""The worker process the supervisor runs: ``python -m sergeant.slave``.

It imports the worker class, runs ``init_worker()`` and ``work_loop()``, reports
through its exit code (``ExitCode``) and a ``SlaveStatus`` JSON file, and exits.

The first SIGTERM (or SIGINT) stops the loop gracefully: an idle worker stops at
once, a running task finishes (the supervisor kills it after the grace period);
tasks pulled but not started go back to the queue. A second signal kills the
process and its children at once.

Under a supervisor (``--supervisor-pid``) the worker also stops when the
supervisor is gone, and bounds its own exit (see ``sergeant.process.parent``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
import types
import typing

from sergeant.broker import running as _running
from sergeant.config import WorkerConfig
from sergeant.consume.heartbeat import heartbeat_interval
from sergeant.errors import ConfigError, ConnectorError, WorkerImportError
from sergeant.killer import ShutdownRequested
from sergeant.killer.process import kill_tree
from sergeant.killer.thread import raise_in_thread
from sergeant.process import parent as _parent
from sergeant.process.policy import ExitCode, SlaveStatus
from sergeant.worker import Worker, WorkerSummary
from sergeant.worker.loader import load_worker_class

__all__ = [
    "Slave",
    "exit_code_for",
    "load_worker_class",
    "main",
    "refuse_in_process_broker",
    "stop_leftover_threads",
]

logger = logging.getLogger("sergeant.slave")  # the name it had before the move

#: Seconds background threads get to stop after the work loop ended.
THREAD_STOP_SECONDS = 1.0


def lease_keeping(config: WorkerConfig, owner: str) -> dict[str, typing.Any] | None:
    """What the supervisor needs to keep this process's leases (see ``SlaveStatus.leases``)."""
    if config.delivery != "at_least_once":
        return None
    connector = config.connector
    try:
        json.dumps(connector.params)
    except (TypeError, ValueError) as exc:
        logger.warning(
            "the supervisor cannot keep this worker's leases: the connector params are not "
            "JSON (%s); a dead worker's tasks wait for their leases to expire",
            exc,
            extra={"event": "lease_keeping_disabled"},
        )
        return None
    return {
        "type": connector.type,
        "params": connector.params,
        "queue": config.name,
        "owner": owner,
        "lease_seconds": config.lease_seconds,
        "max_deliveries": config.max_deliveries,
        # A cancelled task left running this long after the request is killed (its
        # worker learns of it at a heartbeat, then gives it the grace period).
        "cancel_kill_seconds": heartbeat_interval(config) + config.timeouts.grace_period,
    }


def refuse_in_process_broker(config: WorkerConfig) -> None:
    """Refuse the ``memory`` broker in a supervised worker process.

    Its queues live in one process: each worker process would get an empty one of
    its own, and the tasks pushed elsewhere would never run.

    Raises:
        ConfigError: ``config`` uses the ``memory`` connector.
    """
    if config.connector.type == "memory":
        raise ConfigError(
            "the 'memory' connector keeps its queues inside one process, so supervised "
            "worker processes cannot share it; run the worker in-process (work_loop()) "
            "or use a 'local', 'redis' or 'mongo' connector."
        )


def exit_code_for(summary: WorkerSummary, terminated: bool) -> ExitCode:
    """The exit code that reports how ``work_loop()`` ended."""
    if terminated:
        return ExitCode.TERMINATED
    if summary["stop"]:
        return ExitCode.STOP_REQUESTED
    if summary["respawn"]:
        return ExitCode.RESPAWN_REQUESTED
    if summary["initialize_exception"] is not None:
        return ExitCode.INITIALIZE_FAILED
    if summary["executor_exception"] is not None:
        return ExitCode.EXECUTOR_FAILED
    return ExitCode.DONE


def stop_leftover_threads(timeout: float = THREAD_STOP_SECONDS) -> list[str]:
    """Ask the non-daemon threads still alive to stop (``SystemExit`` raised in them).

    Returns:
        The names of the threads still alive after ``timeout`` seconds.
    """
    current = threading.current_thread()
    leftovers = [
        thread
        for thread in threading.enumerate()
        if thread is not current and not thread.daemon and thread.is_alive()
    ]
    for thread in leftovers:
        if thread.ident is not None:
            raise_in_thread(thread.ident, SystemExit)
    deadline = time.monotonic() + timeout
    for thread in leftovers:
        thread.join(max(0.0, deadline - time.monotonic()))
    return [thread.name for thread in leftovers if thread.is_alive()]


class Slave:
    """Runs one worker in this process and reports to the supervisor."""

    def __init__(
        self,
        module_name: str,
        class_name: str,
        status_path: str | None,
        supervisor_pid: int | None = None,
    ) -> None:
        self.module_name = module_name
        self.class_name = class_name
        self.status_path = status_path
        self.supervisor_pid = supervisor_pid
        self.status = SlaveStatus(pid=os.getpid())
        self.worker: Worker | None = None
        self._terminating = False
        self._finished = False

    def run(self) -> ExitCode:
        """Run the worker to the end; returns the exit code (the status file is written)."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)
        try:
            code = self._run()
        except ShutdownRequested:
            code = ExitCode.TERMINATED
        self._finished = True
        self.status.phase = "done"
        self.status.threads_left = stop_leftover_threads()
        if self.status.threads_left:
            logger.error(
                "background threads refused to stop: %s; the process is killed",
                ", ".join(self.status.threads_left),
                extra={"event": "threads_left"},
            )
        self._report()
        return code

    def _run(self) -> ExitCode:
        if self.supervisor_pid is not None and not _parent.watch(
            self.supervisor_pid, lambda: self.status.grace_period, lambda: self._terminating
        ):
            return ExitCode.TERMINATED
        try:
            worker_class = load_worker_class(self.module_name, self.class_name)
        except WorkerImportError as exc:
            return self._failed(ExitCode.IMPORT_ERROR, str(exc))
        try:
            self.worker = worker_class()
            if self.status_path is not None or self.supervisor_pid is not None:
                refuse_in_process_broker(self.worker.config)
            self.status.grace_period = self.worker.config.timeouts.grace_period
            self.status.leases = lease_keeping(self.worker.config, self.worker.owner_id)
            self._report()
            self.worker.init_worker()
        except ConfigError as exc:
            return self._failed(ExitCode.CONFIG_ERROR, f"{self.class_name}: {exc}")
        except Exception as exc:
            logger.error(
                "the worker failed to start: %r",
                exc,
                exc_info=True,
                extra={"event": "worker_start_failed"},
            )
            return self._failed(ExitCode.INIT_FAILED, f"{type(exc).__name__}: {exc}")
        try:
            # One bounded check (the connector's connect/selection timeout), not retried:
            # later faults are retried by the work loop, but a broker that is not there
            # at start is most likely a wrong address, which deserves one clear sentence.
            self.worker.broker.ping()
        except ConnectorError as exc:
            # Said once: by the supervisor from the status file, or here when alone.
            return self._failed(ExitCode.BROKER_UNAVAILABLE, str(exc))
        summary = self.worker.work_loop()
        self._finished = True
        self.status.tasks_done = summary["tasks_done"]
        self.status.respawn, self.status.stop = summary["respawn"], summary["stop"]
        return exit_code_for(summary, self._terminating)

    def _failed(self, code: ExitCode, error: str) -> ExitCode:
        self.status.error = error
        if self.status_path is None:  # no supervisor to say it
            print(error, file=sys.stderr)
        return code

    def _report(self) -> None:
        if self.status_path is not None:
            self.status.dump(self.status_path)

    def _on_signal(self, signum: int, frame: types.FrameType | None) -> None:
        if self._terminating:  # a second signal: no more grace
            logger.error(
                "a second %s: killing this worker and its children at once",
                signal.Signals(signum).name,
                extra={"event": "worker_killed"},
            )
            kill_tree(os.getpid())
            os.kill(os.getpid(), signal.SIGKILL)
        self._terminating = True
        if self._finished:
            return
        executor = getattr(self.worker, "executor", None)
        request_stop = getattr(executor, "request_stop", None)
        if request_stop is None:  # still starting up: nothing to hand back
            raise ShutdownRequested()
        request_stop()  # raises ShutdownRequested itself when idle


def main(argv: typing.Sequence[str] | None = None) -> int:
    """Entry point of ``python -m sergeant.slave``."""
    parser = argparse.ArgumentParser(prog="python -m sergeant.slave")
    parser.add_argument("--worker-module", required=True)
    parser.add_argument("--worker-class", required=True)
    parser.add_argument("--status-file", default=None, help="where to write the JSON status")
    parser.add_argument(
        "--supervisor-pid", type=int, default=None, help="stop when this parent process is gone"
    )
    parser.add_argument(
        "--running-file", default=None, help="where the supervisor reads the running tasks"
    )
    args = parser.parse_args(argv)
    _running.use_file(args.running_file)
    logging.basicConfig(format="%(asctime)s %(name)s %(process)d %(levelname)s %(message)s")
    slave = Slave(args.worker_module, args.worker_class, args.status_file, args.supervisor_pid)
    code = slave.run()
    if slave.status.threads_left:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)  # a thread that refuses to stop must not hang the process
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
