"""The protocol between the supervisor and its worker processes, and its respawn policy.

A worker process (``python -m sergeant.slave``) reports through its exit code (an
``ExitCode``) and a ``SlaveStatus`` JSON file. ``decide`` turns both into a
``Decision``; it is a pure function, so the whole policy is unit-tested without
processes.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import os
import signal
import typing

__all__ = [
    "BACKOFF_BASE_SECONDS",
    "BACKOFF_MAX_SECONDS",
    "Decision",
    "ExitCode",
    "SlaveStatus",
    "backoff_seconds",
    "decide",
    "describe_exit",
]

#: Delay before the second consecutive failed start of a worker slot; doubles after.
BACKOFF_BASE_SECONDS = 0.5
#: Longest delay between respawns of a worker that keeps failing.
BACKOFF_MAX_SECONDS = 30.0


class ExitCode(enum.IntEnum):
    """Exit codes of a worker process (a negative code means killed by that signal)."""

    DONE = 0  #: the work loop ended normally (``max_tasks_per_run`` reached)
    CRASHED = 1  #: an exception escaped the worker process (Python's own exit code)
    RESPAWN_REQUESTED = 10  #: a task called ``respawn()``
    STOP_REQUESTED = 11  #: a task called ``stop()``: stop the whole fleet
    TERMINATED = 12  #: SIGTERM/SIGINT: the loop ended gracefully
    IMPORT_ERROR = 13  #: the worker module or class cannot be imported
    CONFIG_ERROR = 14  #: ``generate_config()`` returned an invalid configuration
    INIT_FAILED = 15  #: constructing the worker or ``init_worker()`` failed
    INITIALIZE_FAILED = 16  #: the ``initialize()`` hook raised
    EXECUTOR_FAILED = 17  #: the executor raised (a broker failure, for example)
    BROKER_UNAVAILABLE = 18  #: the broker did not answer at start (respawned with backoff)


#: Exits after which the worker simply gets a fresh process.
_NORMAL = frozenset({ExitCode.DONE, ExitCode.RESPAWN_REQUESTED, ExitCode.TERMINATED})


@dataclasses.dataclass
class SlaveStatus:
    """What a worker process tells the supervisor, written as JSON to its status file.

    Attributes:
        pid: the worker process id.
        phase: ``'running'`` once the worker is set up, ``'done'`` when it has ended.
        grace_period: the worker's ``Timeouts.grace_period``, in seconds.
        tasks_done: tasks settled by the work loop.
        respawn: a task called ``respawn()``.
        stop: a task called ``stop()``.
        error: one sentence on why the process failed, if it did.
        threads_left: names of background threads that refused to stop.
        leases: where the worker's leases are, so the supervisor can keep them:
            ``{"type", "params", "queue", "owner", "lease_seconds",
            "max_deliveries"}`` (None at-most-once, or before it is known).
    """

    pid: int
    phase: typing.Literal["running", "done"] = "running"
    grace_period: float = 10.0
    tasks_done: int = 0
    respawn: bool = False
    stop: bool = False
    error: str | None = None
    threads_left: list[str] = dataclasses.field(default_factory=list)
    leases: dict[str, typing.Any] | None = None

    def dump(self, path: str) -> None:
        """Write this status to ``path`` atomically (write a temporary file, then rename)."""
        temporary = f"{path}.tmp"
        with open(temporary, "w", encoding="utf-8") as file:
            json.dump(dataclasses.asdict(self), file)
        os.replace(temporary, path)

    @classmethod
    def load(cls, path: str) -> SlaveStatus | None:
        """Read a status file; None if it is missing or unreadable."""
        try:
            with open(path, encoding="utf-8") as file:
                data = json.load(file)
            return cls(**data)
        except (OSError, ValueError, TypeError):
            return None


@dataclasses.dataclass(frozen=True)
class Decision:
    """What the supervisor does after a worker process ended.

    Attributes:
        respawn: start a new worker process in its place.
        delay_seconds: wait this long before respawning.
        stop_fleet: stop every worker and exit.
        fatal_message: exit non-zero with this sentence (implies ``stop_fleet``).
        failure: the exit counts as a failure for the backoff.
        reason: a short description for the log.
    """

    respawn: bool
    delay_seconds: float = 0.0
    stop_fleet: bool = False
    fatal_message: str | None = None
    failure: bool = False
    reason: str = ""


def backoff_seconds(recent_failures: int) -> float:
    """Delay before respawning after ``recent_failures`` earlier consecutive failures."""
    if recent_failures <= 0:
        return 0.0
    return float(min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (recent_failures - 1)))


def describe_exit(exit_code: int) -> str:
    """A readable name for an exit code: ``'DONE'``, ``'killed by SIGKILL'``, ``'exit 3'``."""
    if exit_code < 0:
        try:
            return f"killed by {signal.Signals(-exit_code).name}"
        except ValueError:
            return f"killed by signal {-exit_code}"
    try:
        return ExitCode(exit_code).name
    except ValueError:
        return f"exit {exit_code}"


def decide(
    exit_code: int, status: SlaveStatus | None, recent_failures: int, task_caused: bool = False
) -> Decision:
    """Decide what to do after a worker process ended.

    Args:
        exit_code: the process's return code (negative: killed by that signal).
        status: its last status report, or None if it wrote none (killed early).
        recent_failures: consecutive failures of this worker slot before this one.
        task_caused: it ended while running a task, whose delivery was charged for it
            (the task's delivery bound, not a backoff, stops a poison task).

    Returns:
        Stop the fleet on ``stop()``; exit with a message when the worker cannot be
        imported or configured (respawning cannot help); otherwise respawn, at once
        after a normal end or a death a task caused, with exponential backoff after
        repeated failures.
    """
    reason = describe_exit(exit_code)
    error = status.error if status is not None else None
    if exit_code == ExitCode.STOP_REQUESTED or (status is not None and status.stop):
        return Decision(respawn=False, stop_fleet=True, reason="a task called stop()")
    if exit_code in (ExitCode.IMPORT_ERROR, ExitCode.CONFIG_ERROR):
        message = error or f"the worker process failed to start ({reason})"
        return Decision(respawn=False, stop_fleet=True, fatal_message=message, reason=reason)
    if task_caused:
        return Decision(respawn=True, reason=reason)
    if exit_code in _NORMAL and (
        exit_code != ExitCode.DONE or status is None or status.phase == "done"
    ):
        return Decision(respawn=True, reason=reason)
    if error:
        reason = f"{reason}: {error}"
    return Decision(
        respawn=True,
        delay_seconds=backoff_seconds(recent_failures),
        failure=True,
        reason=reason,
    )
