"""The kill-note protocol between the watchdog and the broker, in one place.

When the watchdog (``sergeant.killer.process``) kills a worker at a task's hard
deadline it stores a short note under :func:`key` in the worker's broker, with a
TTL. When that task later passes its delivery bound, ``Broker.lease_tasks`` finds
the note and dead-letters it as ``'killed after timeout'`` instead of ``'worker
died'``. The worker hands the watchdog a :class:`KillNote` (where to write) through
:data:`ENV`, as JSON: an environment variable, not an argument, so passwords stay
out of ``ps``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import typing

__all__ = ["ENV", "TTL_SECONDS", "KillNote", "key", "text"]

logger = logging.getLogger("sergeant.killer.process")

#: Environment variable carrying the :class:`KillNote` of the watchdog.
ENV = "SERGEANT_WATCHDOG_NOTE"
#: Seconds a kill note is kept: long enough for a backed-up queue to hand the task
#: out again, short enough that notes of tasks never seen again go away.
TTL_SECONDS = 7 * 24 * 3600.0


def key(queue: str, task_id: str) -> str:
    """The key under which the watchdog notes that it killed ``task_id`` of ``queue``."""
    return f"sergeant-kill-note:{queue}:{task_id}"


def text(late_seconds: float) -> str:
    """The note (and dead-letter error) of a task killed ``late_seconds`` after its deadline."""
    return (
        "the watchdog killed its worker: still running at the hard deadline "
        f"(timeout + grace period), {late_seconds:.3f}s after it"
    )


@dataclasses.dataclass(frozen=True)
class KillNote:
    """Where the watchdog notes the tasks it kills: the worker's connector and queue."""

    connector_type: str
    connector_params: typing.Mapping[str, typing.Any]
    queue: str

    def to_json(self) -> str:
        """The JSON the watchdog reads; raises TypeError/ValueError if params are not JSON."""
        return json.dumps(
            {"type": self.connector_type, "params": self.connector_params, "queue": self.queue}
        )

    @classmethod
    def from_json(cls, data: str) -> KillNote:
        """The note that :meth:`to_json` wrote."""
        fields = json.loads(data)
        return cls(fields["type"], fields["params"], fields["queue"])

    def write(self, task_id: str, late_seconds: float) -> None:
        """Store the note of ``task_id`` in the broker; log (never raise) on failure.

        Written after the kill, so a slow broker never delays it: the task's lease
        outlives the kill by at least two thirds of a lease, plenty for one write.
        """
        # Imported only here: the watchdog stays small until it has killed something.
        from sergeant.connector import create

        try:
            connector = create(self.connector_type, dict(self.connector_params))
            try:
                connector.key_set(
                    key(self.queue, task_id), text(late_seconds).encode(), TTL_SECONDS
                )
            finally:
                connector.close()
        except Exception as exc:  # the kill is done; a missing note only changes a reason
            logger.error(
                "watchdog could not store the kill note of task %s: %r",
                task_id,
                exc,
                extra={"event": "kill_note_failed"},
            )
