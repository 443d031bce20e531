"""The process watchdog: kills a worker's process tree when a hard deadline passes.

A task stuck in C code that holds the GIL (a catastrophic regex in a thread,
``ctypes`` calls) with its signals blocked cannot be stopped from inside its own
interpreter: no signal handler and no thread gets to run. So the watchdog is a
separate process, started as ``python -m sergeant.killer.process --pid PID``
(never through a path relative to the cwd). The worker sends it commands over
its stdin pipe, one per line::

    START <slot> <seconds> [<task id>]   kill the tree if <slot> is still armed
                                         <seconds> from now
    STOP <slot>                          disarm <slot>

Deadlines are kept on the watchdog's monotonic clock. When the worker passes its
broker and queue (a ``KillNote``, see ``sergeant.broker.kill_note``), the watchdog, right
after a kill, stores a short kill note for the task id given with START, so that
the task is dead-lettered as ``'killed after timeout'`` once it passes its
delivery bound.

The watchdog exits when the pipe closes (the worker ended or died) or when the
worker is no longer its parent, so it never outlives the worker.
"""

from __future__ import annotations

import argparse
import contextlib
import enum
import logging
import os
import select
import signal
import subprocess
import sys
import time
import typing

import psutil

from sergeant.broker.kill_note import ENV as NOTE_ENV
from sergeant.broker.kill_note import KillNote, text

__all__ = [
    "Command",
    "ProcessKiller",
    "Watchdog",
    "kill_mark_path",
    "kill_tree",
    "main",
    "take_kill_mark",
]

logger = logging.getLogger(__name__)

#: Longest the watchdog sleeps between checks that its worker is still alive.
POLL_SECONDS = 0.5
#: Seconds ``ProcessKiller.close`` waits for the watchdog to exit before killing it.
CLOSE_TIMEOUT_SECONDS = 2.0
#: Marker in the watchdog's command line, so memory accounting can leave it out.
WATCHDOG_MODULE = "sergeant.killer.process"
#: Environment variable naming the file the watchdog writes just before it kills, so
#: the supervisor tells its kill from any other death (see :func:`kill_mark_path`).
MARK_ENV = "SERGEANT_WATCHDOG_MARK"


def kill_mark_path(running_path: str) -> str:
    """The kill mark of the worker whose running file is ``running_path``."""
    return f"{running_path}.killed"


class Command(enum.Enum):
    """A command on the watchdog's pipe."""

    START = "START"
    STOP = "STOP"


def kill_tree(pid: int, sig: int = signal.SIGKILL) -> list[int]:
    """Send ``sig`` to ``pid`` and all its descendants (except the caller).

    The children are listed first and the root is signalled first, so it cannot
    spawn more while its tree is being killed.

    Returns:
        The pids that were signalled.
    """
    try:
        root = psutil.Process(pid)
        descendants = root.children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    me = os.getpid()
    signalled = []
    for process in [root, *descendants]:
        if process.pid == me:
            continue
        try:
            process.send_signal(sig)
        except psutil.NoSuchProcess:
            continue
        signalled.append(process.pid)
    return signalled


class Watchdog:
    """The watchdog's loop: read commands, track deadlines, kill on expiry."""

    def __init__(
        self,
        pid: int,
        commands_fd: int,
        note: KillNote | None = None,
        mark_path: str | None = None,
    ) -> None:
        self.pid = pid
        self.commands_fd = commands_fd
        self.note = note
        self.mark_path = mark_path
        self.deadlines: dict[str, float] = {}
        self.task_ids: dict[str, str] = {}
        self._buffer = b""

    def run(self) -> int:
        """Guard the worker until its pipe closes; returns the process exit status."""
        while True:
            if not self._read_commands(self._wait_seconds()):
                return 0
            expired = [slot for slot, at in self.deadlines.items() if at <= time.monotonic()]
            if expired:
                self._kill(expired[0])
                return 0
            if os.getppid() != self.pid:  # the worker died and this process was re-parented
                return 0

    def _wait_seconds(self) -> float:
        if not self.deadlines:
            return POLL_SECONDS
        return max(0.0, min(POLL_SECONDS, min(self.deadlines.values()) - time.monotonic()))

    def _read_commands(self, timeout: float) -> bool:
        """Apply the commands that arrive within ``timeout``; False once the pipe closed."""
        readable, _, _ = select.select([self.commands_fd], [], [], timeout)
        if not readable:
            return True
        data = os.read(self.commands_fd, 65536)
        if not data:
            return False
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            self.apply(line.decode("ascii", "replace"))
        return True

    def apply(self, line: str) -> None:
        """Apply one command line (malformed lines are logged and ignored)."""
        parts = line.split()
        try:
            command = Command(parts[0])
            if command is Command.START:
                self.deadlines[parts[1]] = time.monotonic() + float(parts[2])
                if len(parts) > 3:
                    self.task_ids[parts[1]] = parts[3]
            else:
                self.deadlines.pop(parts[1], None)
                self.task_ids.pop(parts[1], None)
        except (IndexError, ValueError):
            logger.error(
                "watchdog ignored a malformed command %r",
                line,
                extra={"event": "watchdog_bad_command"},
            )

    def _kill(self, slot: str) -> None:
        late = time.monotonic() - self.deadlines[slot]
        if self.mark_path is not None:
            _write_mark(self.mark_path, text(late))
        killed = kill_tree(self.pid)
        logger.critical(
            "watchdog killed worker %d and %d descendants: %s was still running at its hard "
            "deadline (timeout + grace period), killed %.3fs after it",
            self.pid,
            max(0, len(killed) - 1),
            slot,
            late,
            extra={"event": "worker_killed", "pid": self.pid, "late_seconds": late},
        )
        task_id = self.task_ids.get(slot)
        _count_kill(self.note)
        if self.note is not None and task_id is not None:
            self.note.write(task_id, late)


def _write_mark(path: str, text: str) -> None:
    """Tell the supervisor this death is the watchdog's (before the kill: it sees the
    death at once); a failure only makes the reason 'worker killed by SIGKILL'."""
    try:
        with open(path, "w", encoding="utf-8") as file:
            file.write(text)
    except OSError as exc:
        logger.error(
            "watchdog could not write its kill mark %s: %r",
            path,
            exc,
            extra={"event": "kill_note_failed"},
        )


def take_kill_mark(running_path: str) -> str | None:
    """The text of the watchdog's kill mark for that worker, removed; None if it left
    none (the worker died some other way)."""
    path = kill_mark_path(running_path)
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read()
    except OSError:
        return None
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)
    return text


def _count_kill(note: KillNote | None) -> None:
    """Count the kill in the supervisor's metrics, when they are on (never raises)."""
    # Imported only here, like the connector of the note: the watchdog stays small.
    from sergeant import metrics

    try:
        recorder = metrics.task_metrics()
        if recorder is not None:
            recorder.killed.labels(note.queue if note is not None else "").inc()
    except Exception as exc:  # the kill is done; a metric must not break the watchdog
        logger.error(
            "watchdog could not count the kill: %r", exc, extra={"event": "metrics_failed"}
        )


class ProcessKiller:
    """The worker's side of the watchdog: start it, arm and disarm deadlines, close it.

    Constructing it has no side effect; ``start()`` spawns the watchdog process.
    It is safe to use from several threads.

    Args:
        pid: the process to guard; this one by default.
        note: the worker's broker and queue, so the watchdog can note the tasks
            it kills (see the module docstring); None (or params that are not
            JSON) disables the notes.
        mark_path: a file to write just before killing (see :func:`kill_mark_path`).
    """

    def __init__(
        self,
        pid: int | None = None,
        note: KillNote | None = None,
        mark_path: str | None = None,
    ) -> None:
        self.pid = pid if pid is not None else os.getpid()
        self.note = note
        self.mark_path = mark_path
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Spawn the watchdog (``python -m sergeant.killer.process``)."""
        env = dict(os.environ)
        env.pop(NOTE_ENV, None)
        env.pop(MARK_ENV, None)
        if self.mark_path is not None:
            env[MARK_ENV] = self.mark_path
        if self.note is not None:
            try:
                env[NOTE_ENV] = self.note.to_json()
            except (TypeError, ValueError) as exc:
                logger.warning(
                    "the watchdog will not note the tasks it kills: the connector params "
                    "are not JSON (%s); killed tasks are dead-lettered as 'worker died'",
                    exc,
                    extra={"event": "kill_notes_disabled"},
                )
        self._process = subprocess.Popen(
            [sys.executable, "-m", WATCHDOG_MODULE, "--pid", str(self.pid)],
            stdin=subprocess.PIPE,
            close_fds=True,
            env=env,
        )

    @property
    def watchdog_pid(self) -> int | None:
        """The watchdog's pid, or None before ``start()``."""
        return self._process.pid if self._process is not None else None

    def arm(self, slot: str, seconds: float, task_id: str | None = None) -> None:
        """Kill the worker's tree unless ``disarm(slot)`` comes within ``seconds``.

        Args:
            slot: what is being guarded (one per thread).
            seconds: the hard deadline, from now.
            task_id: the task running in ``slot``, noted in the broker if it is killed.
        """
        line = f"{Command.START.value} {slot} {seconds:.6f}"
        if task_id and not any(c.isspace() for c in task_id):
            line += f" {task_id}"
        self._send(line + "\n")

    def disarm(self, slot: str) -> None:
        """Cancel the deadline of ``slot``."""
        self._send(f"{Command.STOP.value} {slot}\n")

    def _send(self, line: str) -> None:
        if self._process is None or self._process.stdin is None:
            raise RuntimeError("ProcessKiller.start() must be called before arm()/disarm()")
        try:
            # One write() per line: atomic on a pipe, so threads never interleave.
            os.write(self._process.stdin.fileno(), line.encode("ascii"))
        except (BrokenPipeError, ValueError, OSError) as exc:
            logger.critical(
                "the watchdog process is gone (%r): hard timeouts are not enforced",
                exc,
                extra={"event": "watchdog_lost"},
            )

    def close(self) -> None:
        """Close the pipe; the watchdog exits (it is killed if it does not)."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(timeout=CLOSE_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> ProcessKiller:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def main(argv: typing.Sequence[str] | None = None) -> int:
    """Entry point of ``python -m sergeant.killer.process --pid PID``."""
    parser = argparse.ArgumentParser(prog=f"python -m {WATCHDOG_MODULE}")
    parser.add_argument("--pid", type=int, required=True, help="the worker process to guard")
    args = parser.parse_args(argv)
    # Ctrl-C reaches the whole process group: the watchdog keeps guarding until
    # its worker is gone (the worker closes the pipe when it ends).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(
        level=logging.INFO, format=f"%(asctime)s sergeant-watchdog {os.getpid()} %(message)s"
    )
    note = KillNote.from_json(os.environ[NOTE_ENV]) if os.environ.get(NOTE_ENV) else None
    mark = os.environ.get(MARK_ENV) or None
    return Watchdog(args.pid, sys.stdin.fileno(), note, mark).run()


if __name__ == "__main__":
    sys.exit(main())
