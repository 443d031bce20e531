"""The transcripts of docs/reference/cli.md, produced by running the commands.

A ```console block right after a ``<!-- transcript -->`` line is generated: its
``$ `` lines are the commands (kept as written), run in page order by bash in the
project directory, and the output under each is what the command printed. All
blocks of the page share one session: a fresh temp directory, written
``/tmp/sgdoc`` in the page, whose ``broker.sqlite3`` starts with the tasks that
``prepare`` leaves there. Other console blocks are hand-written and kept.

The output is made deterministic: the temp directory and the project directory
are replaced by fixed paths, and task ids, timestamps, clock times and process ids
by stable stand-ins of the same width (so tables keep their shape).
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import tempfile
import time
import typing
from pathlib import Path

from sergeant import config, objects, worker

__all__ = ["CLI_PAGE", "MARKER", "SESSION_DIR", "prepare", "render"]

CLI_PAGE = "reference/cli.md"
MARKER = "<!-- transcript -->"
#: How the session's temp directory is written in the page.
SESSION_DIR = "/tmp/sgdoc"
#: How the project directory is written in the page.
PROJECT_DIR = "~/my_app"
#: Seconds one command may take.
COMMAND_TIMEOUT = 60.0
#: The terminal width the tables are drawn for.
COLUMNS = "100"

_BLOCK = re.compile(re.escape(MARKER) + r"\n```console\n(.*?)```\n", re.S)


class _GivingUpWorker(worker.Worker):
    """Retries each task once, then gives up on it: it goes to the dead letters."""

    def generate_config(self) -> config.WorkerConfig:
        return config.WorkerConfig(
            name="emails",
            connector=config.Connector(type="local", params={"file_path": os.environ["SG_DOC"]}),
            max_retries=1,
            max_tasks_per_run=4,
            block_seconds=0.1,
        )

    def work(self, task: objects.Task) -> None:
        raise ValueError(f"mailbox of {task.kwargs['to']} is full")

    def on_failure(self, task: objects.Task, exception: Exception) -> None:
        self.retry(task)


def prepare(broker_file: str) -> None:
    """Fill the session's broker: two dead tasks, three ready ones (one HIGH), one delayed."""
    os.environ["SG_DOC"] = broker_file
    try:
        with _GivingUpWorker() as giving_up:
            giving_up.init_worker()
            giving_up.push_tasks([{"to": "a@example.com"}, {"to": "b@example.com"}])
            giving_up.work_loop()
            giving_up.push_task({"to": "c@example.com"}, priority="HIGH")
            giving_up.push_tasks([{"to": "d@example.com"}, {"to": "e@example.com"}])
            giving_up.push_task({"to": "f@example.com"}, consumable_from=time.time() + 3600)
    finally:
        del os.environ["SG_DOC"]


def _prepare_in_a_child(broker_file: Path, project: Path) -> None:
    """``prepare`` in a process of its own: a worker installs signal handlers and loggers."""
    code = f"from docs_tools.transcripts import prepare; prepare({str(broker_file)!r})"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"preparing the transcripts' broker failed:\n{result.stderr}")


class _Stable:
    """Replaces what changes from run to run by stand-ins of the same width."""

    def __init__(self, session: Path, project: Path) -> None:
        self._paths = [(str(session), SESSION_DIR), (str(project), PROJECT_DIR)]
        self._seen: dict[str, dict[str, str]] = {}

    def _stand_in(self, kind: str, value: str, make: typing.Callable[[int], str]) -> str:
        table = self._seen.setdefault(kind, {})
        if value not in table:
            table[value] = make(len(table) + 1)
        return table[value]

    def __call__(self, text: str) -> str:
        for real, shown in self._paths:
            text = text.replace(real, shown)
        text = re.sub(
            r"\b[0-9a-f]{16}(?=-\d+\b)",
            lambda m: self._stand_in(
                "id", m[0], lambda n: hashlib.sha256(f"task {n}".encode()).hexdigest()[:16]
            ),
            text,
        )
        text = re.sub(
            r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00",
            lambda m: self._stand_in("time", m[0], lambda n: f"2026-01-01T12:00:00.{n:06d}+00:00"),
            text,
        )
        text = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}", "2026-01-01 12:00:00,000", text)
        # whole seconds, as the dead list table shows them
        text = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?![,.\d])", "2026-01-01 12:00:00", text)
        text = re.sub(r"(sergeant stats +)\d\d:\d\d:\d\d", r"\g<1>12:00:00", text)
        return re.sub(
            r"\bpid (\d+)",
            lambda m: "pid " + self._stand_in("pid", m[1], lambda n: str(4200 + n)),
            text,
        )


def _run(command: str, session: Path, project: Path) -> str:
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "TMPDIR": str(session),
        "COLUMNS": COLUMNS,
        "NO_COLOR": "1",
        "TERM": "dumb",
    }
    env.pop("SERGEANT_BROKER", None)
    result = subprocess.run(
        ["bash", "-c", command.replace(SESSION_DIR, str(session))],
        cwd=project,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )
    return result.stdout


def _commands(block: str) -> list[str]:
    return [line[2:] for line in block.split("\n") if line.startswith("$ ")]


def render(text: str, project: Path) -> str:
    """``text`` with every transcript block's output produced again by its commands.

    Args:
        text: the page.
        project: the project directory (commands run there, so ``examples`` imports).
    """
    with tempfile.TemporaryDirectory(prefix="sergeant-doc-") as directory:
        session = Path(directory)
        _prepare_in_a_child(session / "broker.sqlite3", project)
        stable = _Stable(session, project)

        def transcript(match: re.Match[str]) -> str:
            shown = []
            for command in _commands(match[1]):
                output = stable(_run(command, session, project))
                # A progress display leaves an empty line on a non-terminal.
                lines = [line.rstrip() for line in output.strip("\n").split("\n")]
                shown.append(
                    "\n".join([f"$ {command}", *lines]) if output.strip() else f"$ {command}"
                )
            return f"{MARKER}\n```console\n" + "\n\n".join(shown) + "\n```\n"

        return _BLOCK.sub(transcript, text)
