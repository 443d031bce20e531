"""The supervisor keeps its children's leases: renewed while a child lives, settled
the moment it dies.

A worker process renews its own leases from a heartbeat thread, which cannot run while
a task holds the GIL; and when a process dies its leases used to wait for their
deadline. The supervisor is the one process that is always responsive and sees a
child's death at once, so it does both, through the broker's owner-level steps:

* while a child lives, every third of its lease it extends every lease the child
  holds (``Connector.extend_owned``), including pulls whose reply the child has not
  read, so no task of a live child is handed out twice;
* when a child ends, the task it was running (read from its running file, see
  ``sergeant.broker.running``) is charged that delivery (``Connector.charge_many``), with a
  reason naming the death, and every other lease it held goes back to the head of its
  queue uncharged (``Connector.release_owned``) — at once, not a lease later. The
  release is repeated twice shortly after, for a pull the dead child had sent that
  the broker ran only after the first release.

Broker calls run in this module's thread, never in the supervisor's loop, so a slow
broker never delays noticing a death. Lease expiry stays the fallback for workers run
without a supervisor, and for a supervisor that cannot reach the broker.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import queue
import threading
import time
import typing

from sergeant.broker import KILLED_AFTER_TIMEOUT, Broker
from sergeant.broker import running as _running
from sergeant.config import Connector
from sergeant.killer.process import kill_tree
from sergeant.process.cancels import CancelWatch, Watched
from sergeant.process.policy import describe_exit

__all__ = ["Death", "LeaseKeeper", "death_reason"]

#: Seconds between two looks at the children (renewals are due every lease / 3).
TICK_SECONDS = 0.2
#: After a death, the owner's leases are released again this long after, twice.
RELEASE_AGAIN_AFTER_SECONDS = (1.0, 5.0)
#: Longest pause between two renewals of a child's leases.
MAX_RENEW_SECONDS = 5.0


@dataclasses.dataclass(frozen=True)
class Death:
    """A child that ended, as the supervisor saw it.

    Attributes:
        leases: the child's ``SlaveStatus.leases``.
        running: the non-idle cells of its running file, read at its death.
        reason: why it ended, for the running task's dead letter (see
            :func:`death_reason`).
        error: what else is known (the watchdog's note), for the dead letter.
    """

    leases: dict[str, typing.Any]
    running: list[_running.RunningCell]
    reason: str
    error: str = ""


def death_reason(exit_code: int, killed_by_watchdog: bool, killed_for: str | None) -> str:
    """The dead-letter reason of a task whose worker ended while running it."""
    if killed_by_watchdog:
        return KILLED_AFTER_TIMEOUT
    if killed_for is not None:
        return f"worker killed {killed_for}"
    if exit_code < 0:
        return f"worker {describe_exit(exit_code)}"  # 'worker killed by SIGKILL'
    return f"worker exited with code {exit_code} while running it"


class _Child:
    def __init__(self, leases: dict[str, typing.Any], running_path: str | None) -> None:
        self.leases = leases
        self.next_renewal = 0.0
        self.watched = Watched(leases, running_path) if running_path is not None else None


class LeaseKeeper(threading.Thread):
    """Renews the leases of live children and settles those of dead ones (a daemon).

    Args:
        logger: the supervisor's logger.
    """

    def __init__(self, logger: logging.Logger) -> None:
        super().__init__(name="sergeant-lease-keeper", daemon=True)
        self.logger = logger
        self._events: queue.Queue[tuple[str, int, typing.Any]] = queue.Queue()
        self._children: dict[int, _Child] = {}
        self._releases: list[tuple[float, dict[str, typing.Any]]] = []
        self._brokers: dict[str, Broker] = {}
        self._failing: set[str] = set()
        self._stopped = threading.Event()
        self._idle = threading.Event()
        self._cancels = CancelWatch(logger, self._call, kill_tree)

    # -- called by the supervisor -----------------------------------------------------

    def alive(
        self, pid: int, leases: dict[str, typing.Any], running_path: str | None = None
    ) -> None:
        """Child ``pid`` holds leases described by ``leases``: keep them alive (and stop
        its cancelled tasks, see ``sergeant.process.cancels``, given its running file)."""
        self._events.put(("alive", pid, _Child(leases, running_path)))

    def killed_for_cancel(self, pid: int) -> bool:
        """Whether child ``pid`` (ended) was killed to stop a cancelled task."""
        return self._cancels.forget(pid) is not None

    def died(self, pid: int, death: Death | None) -> None:
        """Child ``pid`` ended: stop renewing; settle its leases when it had some."""
        self._idle.clear()
        self._events.put(("died", pid, death))

    def settle_now(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for every death told so far to be settled."""
        self._events.put(("flush", 0, None))
        self._idle.wait(timeout)

    def stop(self) -> None:
        """Stop the thread and close its connections."""
        self._stopped.set()
        self.join(timeout=10)

    # -- the thread -------------------------------------------------------------------

    def run(self) -> None:
        try:
            while not self._stopped.is_set():
                self._handle_events()
                self._renew_due()
                self._cancels.check(
                    {pid: c.watched for pid, c in self._children.items() if c.watched}
                )
                self._release_again()
                self._stopped.wait(TICK_SECONDS)
        finally:
            for broker in self._brokers.values():
                broker.close()

    def _handle_events(self) -> None:
        while True:
            try:
                kind, pid, detail = self._events.get_nowait()
            except queue.Empty:
                return
            if kind == "alive":
                self._children[pid] = detail
            elif kind == "died":
                self._children.pop(pid, None)
                if detail is not None:
                    self._settle(detail)
            if self._events.empty():
                self._idle.set()

    def _renew_due(self) -> None:
        now = time.monotonic()
        for child in list(self._children.values()):
            if now < child.next_renewal:
                continue
            leases = child.leases
            interval = min(float(leases["lease_seconds"]) / 3, MAX_RENEW_SECONDS)
            child.next_renewal = now + interval
            self._renew(leases)

    def _renew(self, leases: dict[str, typing.Any]) -> None:
        queue_name, owner = str(leases["queue"]), str(leases["owner"])
        seconds = float(leases["lease_seconds"])
        self._call(
            leases, "renew the leases of", lambda c: c.extend_owned(queue_name, owner, seconds)
        )

    def _release(self, leases: dict[str, typing.Any]) -> int:
        queue_name, owner = str(leases["queue"]), str(leases["owner"])
        released = self._call(
            leases, "give back the tasks of", lambda c: c.release_owned(queue_name, owner)
        )
        return int(released or 0)

    def _settle(self, death: Death) -> None:
        leases = death.leases
        queue_name = str(leases["queue"])
        running = [cell.delivery for cell in death.running if cell.state == _running.RUNNING]
        if running:
            bound = int(leases["max_deliveries"])
            result = self._call(
                leases,
                "charge the task of",
                lambda b: b.charge(
                    queue_name, running, bound, death.reason, death.error, report=False
                ),
            )
            if result is not None:
                self.logger.warning(
                    "the task its dead worker was running (%s) was %s",
                    death.reason,
                    "dead-lettered" if result.dead_lettered else "charged and requeued",
                    extra={"event": "dead_worker_task_charged", "queue": queue_name},
                )
        released = self._release(leases)
        if released:
            self.logger.info(
                "gave back %d tasks its dead worker held, uncharged",
                released,
                extra={"event": "dead_worker_tasks_released", "queue": queue_name},
            )
        now = time.monotonic()
        self._releases += [(now + after, leases) for after in RELEASE_AGAIN_AFTER_SECONDS]

    def _release_again(self) -> None:
        now = time.monotonic()
        due = [leases for at, leases in self._releases if at <= now]
        self._releases = [(at, leases) for at, leases in self._releases if at > now]
        for leases in due:
            self._release(leases)

    def _call(
        self,
        leases: dict[str, typing.Any],
        what: str,
        step: typing.Callable[[Broker], typing.Any],
    ) -> typing.Any:
        """Run one broker step; log once per broker when it starts or stops failing."""
        key = json.dumps([leases["type"], leases["params"]], sort_keys=True)
        try:
            broker = self._brokers.get(key)
            if broker is None:
                broker = Broker.from_config(Connector(type=leases["type"], params=leases["params"]))
                self._brokers[key] = broker
            result = step(broker)
        except Exception as exc:
            if key not in self._failing:
                self._failing.add(key)
                self.logger.warning(
                    "could not %s a worker (%r); its leases fall back to expiring",
                    what,
                    exc,
                    extra={"event": "lease_keeping_failed"},
                )
            return None
        if key in self._failing:
            self._failing.discard(key)
            self.logger.info(
                "the broker answers again: keeping the workers' leases",
                extra={"event": "lease_keeping_resumed"},
            )
        return result
