"""The watchdog process of a worker (``sergeant.killer.process``), made for its config."""

from __future__ import annotations

import typing

from sergeant.config import WorkerConfig

if typing.TYPE_CHECKING:
    from sergeant.killer.process import ProcessKiller

__all__ = ["make_process_killer"]


def make_process_killer(config: WorkerConfig | None = None) -> ProcessKiller:
    """A new, unstarted ``ProcessKiller`` for this process.

    Args:
        config: the worker's configuration; when given, the watchdog notes the
            tasks it kills in the worker's broker (see ``sergeant.killer.process``).
    """
    # Imported here: ``python -m sergeant.killer.process`` must not find its module
    # already imported by the ``sergeant`` package (runpy warns and may misbehave).
    from sergeant.broker import running as _running
    from sergeant.broker.kill_note import KillNote
    from sergeant.killer.process import ProcessKiller, kill_mark_path

    running = _running.file_path()
    mark = kill_mark_path(running) if running is not None else None
    if config is None:
        return ProcessKiller(mark_path=mark)
    connector = config.connector
    if connector.type == "memory":  # the watchdog process cannot reach this one's memory
        return ProcessKiller(mark_path=mark)
    note = KillNote(connector.type, connector.params, config.name)
    return ProcessKiller(note=note, mark_path=mark)
