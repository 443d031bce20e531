"""The supervisor stops a cancelled task its worker cannot stop: one holding the GIL.

A worker learns of a cancel at its heartbeat and stops the task itself (see
``sergeant.executor.cancel``); a task stuck in C code that holds the GIL keeps the
heartbeat from ever running. So the supervisor's lease keeper also reads, every
:data:`CHECK_SECONDS`, the cancel requests of each queue its children serve (one
read per queue; nothing more while there is none), finds which task each child runs
(``sergeant.broker.running_ids``), and kills the child still running a cancelled
task once the child had the time to stop it itself (its heartbeat interval, to learn
of the cancel, then ``Timeouts.grace_period``) after the supervisor first saw it.
The task is recorded as cancelled (``get_result`` raises ``TaskCancelled``) and
charged with the death; redelivered, it is refused by the next worker (a cancelled
task never starts). The supervisor then starts a new worker, as after any death.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
import typing

from sergeant.broker.running_ids import running_task_ids

__all__ = ["CHECK_SECONDS", "KILLED_FOR", "CancelWatch", "Watched"]

#: Seconds between two reads of a queue's cancel requests.
CHECK_SECONDS = 1.0
#: How the death of a worker killed by the watch is named (``worker killed ...``).
KILLED_FOR = "to stop its cancelled task"

#: Runs one broker step for a child's leases (``LeaseKeeper._call``): its result, or None.
Call = typing.Callable[
    [dict[str, typing.Any], str, typing.Callable[[typing.Any], typing.Any]], typing.Any
]
#: Kills a process tree.
Kill = typing.Callable[[int], object]


@dataclasses.dataclass(frozen=True)
class Watched:
    """A live child, as the watch sees it: its leases and its running file."""

    leases: dict[str, typing.Any]
    running_path: str


class CancelWatch:
    """Finds the children running cancelled tasks and kills them at their grace period.

    Args:
        logger: the supervisor's logger.
        call: runs a broker step for a child's leases (failures are logged there).
        kill: kills a process tree (``kill_tree``).
    """

    def __init__(self, logger: logging.Logger, call: Call, kill: Kill) -> None:
        self.logger = logger
        self._call = call
        self._kill = kill
        self._next_check = 0.0
        #: (pid, task id) -> (monotonic deadline, the mark it runs under).
        self._deadlines: dict[tuple[int, str], tuple[float, tuple[int, int]]] = {}
        #: The children this killed: pid -> the cancelled task's id.
        self.killed: dict[int, str] = {}

    def check(self, children: typing.Mapping[int, Watched]) -> None:
        """One look, every :data:`CHECK_SECONDS` (called at each keeper tick)."""
        now = time.monotonic()
        if now < self._next_check:
            return
        self._next_check = now + CHECK_SECONDS
        requests: dict[str, frozenset[str]] = {}
        seen: set[tuple[int, str]] = set()
        for pid, child in children.items():
            leases = child.leases
            queue = str(leases["queue"])
            group = _group(leases)
            if group not in requests:
                found = self._call(leases, "read the cancel requests of", _requests_of(queue))
                requests[group] = found or frozenset()
            cancelled = requests[group]
            if not cancelled:
                continue
            for task_id, mark in running_task_ids(child.running_path).items():
                if task_id in cancelled:
                    seen.add((pid, task_id))
                    self._watch(pid, task_id, mark, child, now)
        self._deadlines = {key: value for key, value in self._deadlines.items() if key in seen}

    def _watch(
        self, pid: int, task_id: str, mark: tuple[int, int], child: Watched, now: float
    ) -> None:
        key = (pid, task_id)
        # The worker's time to stop it itself, and one look's slack.
        grace = float(child.leases.get("cancel_kill_seconds", 0.0)) + CHECK_SECONDS
        entry = self._deadlines.get(key)
        if entry is None or entry[1] != mark:
            self._deadlines[key] = (now + grace, mark)
            return
        if now < entry[0] or pid in self.killed:
            return
        self.killed[pid] = task_id
        self._kill(pid)
        self.logger.warning(
            "killed worker pid %d: its task %s was cancelled and still ran %.1fs later "
            "(it holds the GIL, or ignored WorkerCancelled)",
            pid,
            task_id,
            grace,
            extra={"event": "cancelled_task_killed", "pid": pid, "task_id": task_id},
        )
        message = f"cancelled: still running {grace:.1f}s later, its worker was killed"
        self._call(
            child.leases,
            "record the cancel of",
            lambda b: b.record_cancelled(task_id, None, message),
        )

    def forget(self, pid: int) -> str | None:
        """Child ``pid`` ended: the id of the cancelled task this killed it for, if any."""
        return self.killed.pop(pid, None)


def _requests_of(queue: str) -> typing.Callable[[typing.Any], frozenset[str]]:
    return lambda broker: typing.cast(frozenset[str], broker.cancel_requests(queue))


def _group(leases: dict[str, typing.Any]) -> str:
    return json.dumps([leases["type"], leases["params"], leases["queue"]], sort_keys=True)
