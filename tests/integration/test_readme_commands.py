"""The README's "Operating it" commands run as written, as real processes.

Only the brokers are swapped for private ones: ``redis://localhost:6379/0`` for
the session's private ``redis-server`` and ``sqlite:///tmp/...`` for a file in
the test's temp directory. ``module:Class`` targets run unchanged, with
``TMPDIR`` pointing their default SQLite file into the test's temp directory.
"""

from __future__ import annotations

import contextlib
import os
import pty
import re
import select
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from sergeant.config import Connector
from sergeant.connector import create
from tests.servers import RedisServer

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_SECONDS = 60


def readme_commands() -> list[str]:
    """The ``sergeant`` lines of the README's "Operating it" code block."""
    text = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Operating it", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert block is not None, "the README's 'Operating it' section has no sh block"
    return [line for line in block.group(1).splitlines() if line.startswith("sergeant ")]


def sergeant_command() -> list[str]:
    """The installed ``sergeant`` script of this interpreter."""
    script = Path(sys.executable).parent / "sergeant"
    return [str(script)] if script.exists() else [sys.executable, "-m", "sergeant.cli"]


def _as_on_a_terminal() -> None:
    """In the child: Ctrl-C reaches it, as on a terminal. A runner started in the
    background ignores SIGINT, and a signal mask blocking it is inherited too."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


class Session:
    """Runs commands as the README writes them, against private brokers."""

    def __init__(self, redis_url: str, tmp_path: Path) -> None:
        self.swaps = {
            "redis://localhost:6379/0": redis_url,
            "sqlite:///tmp/": f"sqlite:///{tmp_path}/",
        }
        self.env = {**os.environ, "TMPDIR": str(tmp_path), "COLUMNS": "100"}

    def argv(self, line: str) -> list[str]:
        for written, private in self.swaps.items():
            line = line.replace(written, private)
        words = shlex.split(line, comments=True)
        assert words[0] == "sergeant"
        return sergeant_command() + words[1:]

    def run(self, line: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            self.argv(line),
            cwd=PROJECT_ROOT,
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_SECONDS,
            check=False,
        )
        assert result.returncode == 0, f"{line}\nexited {result.returncode}:\n{result.stderr}"
        return result

    def watch(self, line: str) -> str:
        """Run a ``--watch`` command on a terminal until it has drawn, then press Ctrl-C."""
        main_fd, terminal = pty.openpty()
        process = subprocess.Popen(
            self.argv(line),
            cwd=PROJECT_ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=terminal,
            stderr=terminal,
            preexec_fn=_as_on_a_terminal,
        )
        os.close(terminal)
        seen = b""
        try:
            deadline = time.monotonic() + TIMEOUT_SECONDS
            while b"live workers" not in seen and time.monotonic() < deadline:
                if select.select([main_fd], [], [], 1.0)[0]:
                    seen += os.read(main_fd, 65536)
            assert b"live workers" in seen, f"{line} drew nothing: {seen!r}"
            process.send_signal(signal.SIGINT)
            # Keep reading while it exits: a terminal nobody reads fills up, and a
            # redraw blocked on it would hold the exit back.
            deadline = time.monotonic() + TIMEOUT_SECONDS
            with contextlib.suppress(OSError):  # the terminal is gone once it exited
                while process.poll() is None and time.monotonic() < deadline:
                    if select.select([main_fd], [], [], 0.2)[0]:
                        seen += os.read(main_fd, 65536)
                while select.select([main_fd], [], [], 0.2)[0]:
                    seen += os.read(main_fd, 65536)
            returncode = process.wait(timeout=TIMEOUT_SECONDS)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            os.close(main_fd)
        text = seen.decode(errors="replace")
        assert returncode == 0, f"{line}: Ctrl-C gave exit {returncode}:\n{text}"
        assert "Traceback" not in text
        return text


def hello_broker_file(env: dict[str, str]) -> str:
    """The SQLite file the quick start's worker uses under ``env`` (its TMPDIR)."""
    code = (
        "from examples.quickstart import HelloWorker; "
        "print(HelloWorker().config.connector.params['file_path'])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=True,
    )
    return result.stdout.strip()


def test_the_readme_lists_the_commands_this_test_knows() -> None:
    """Each README command is run below; a new one must be added here too."""
    kinds = [" ".join(line.split()[:3]) for line in readme_commands()]
    assert kinds == [
        "sergeant stats -b",
        "sergeant dead list",
        "sergeant dead requeue",
        "sergeant push -b",
        "sergeant purge -b",
    ]


def test_the_readme_operating_commands_run_as_written(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    redis_server.flush()
    session = Session(redis_server.url, tmp_path)
    stats, dead_list, dead_requeue, push, purge = readme_commands()

    # Something for each command to act on: tasks in 'emails' on Redis, and a dead
    # task in the quick start's own queue on its default SQLite file.
    emails = create("redis", Connector.from_url(redis_server.url).params)
    emails.push_many("emails", [b"x", b"y"])
    quickstart = subprocess.run(
        [sys.executable, "examples/quickstart.py", "push", "2"],
        cwd=PROJECT_ROOT,
        env=session.env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=True,
    )
    assert "pushed 2 tasks" in quickstart.stdout
    hello = create("local", {"file_path": hello_broker_file(session.env)})
    hello.dead_letter_many("hello", hello.lease_many("hello", 1, "w", 60), "worker died", "SIGKILL")

    drawn = session.watch(stats)
    assert re.search(r"emails\s*│\s*2\b", drawn), drawn

    listed = session.run(dead_list).stdout
    assert "dead tasks of 'hello'" in listed
    assert "worker died" in listed

    assert "requeued 1 dead tasks of 'hello'" in session.run(dead_requeue).stdout
    assert (hello.dead_count("hello"), hello.length("hello")) == (0, 2)

    [task_id] = session.run(push).stdout.split()
    assert task_id
    pushed = create("local", {"file_path": str(tmp_path / "b.sqlite3")})
    assert (pushed.length("emails"), pushed.length("emails", include_delayed=True)) == (0, 1)

    assert "purged 2 tasks from 'emails'" in session.run(purge, stdin="y\n").stdout
    assert emails.length("emails") == 0
    for connector in (emails, hello, pushed):
        connector.close()
