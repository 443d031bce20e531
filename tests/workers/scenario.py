"""One worker whose tasks act out a scenario, configured by ``SERGEANT_TEST_*`` variables.

The test sets the environment (the supervisor passes it on to its workers). Each
task appends ``event task_id pid`` lines to an independent ledger file, so tests
count executions without trusting the broker.
"""

from __future__ import annotations

import ctypes
import os
import re
import signal
import threading
import time
import typing

from sergeant import config
from sergeant.objects import Task
from sergeant.worker import Worker

__all__ = ["ScenarioWorker", "ThreadedScenarioWorker", "environment", "read_ledger"]

QUEUE = "scenario"


def environment(broker: str, ledger: str, **settings: object) -> dict[str, str]:
    """The variables that configure the scenario workers; ``settings`` as SERGEANT_TEST_<NAME>."""
    env = {"SERGEANT_TEST_BROKER": broker, "SERGEANT_TEST_LEDGER": ledger}
    env.update({f"SERGEANT_TEST_{name.upper()}": str(value) for name, value in settings.items()})
    return env


def read_ledger(path: str) -> list[tuple[str, str, int]]:
    """The ``(event, task_id, pid)`` lines of a ledger file (none if it does not exist)."""
    try:
        with open(path, encoding="utf-8") as file:
            lines = file.read().splitlines()
    except FileNotFoundError:
        return []
    return [(event, task_id, int(pid)) for event, task_id, pid in (line.split() for line in lines)]


def _setting(name: str, default: str) -> str:
    return os.environ.get(f"SERGEANT_TEST_{name}", default)


def _record(event: str, task: Task) -> None:
    line = f"{event} {task.kwargs.get('tag', task.id)} {os.getpid()}\n".encode()
    fd = os.open(os.environ["SERGEANT_TEST_LEDGER"], os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        os.write(fd, line)  # one write with O_APPEND: lines of concurrent workers never mix
    finally:
        os.close(fd)


def _first_time(task: Task) -> bool:
    """True on the task's first run anywhere: poison tasks poison once, then succeed."""
    marker = f"{os.environ['SERGEANT_TEST_LEDGER']}.{task.kwargs.get('tag', task.id)}.once"
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def _gil_poison() -> None:
    signal.pthread_sigmask(
        signal.SIG_BLOCK, {signal.SIGUSR1, signal.SIGALRM, signal.SIGTERM, signal.SIGINT}
    )
    ctypes.PyDLL(None).pause()  # PyDLL keeps the GIL; the blocked signals never wake it


def _memory_hog() -> None:
    hoard = []
    for _ in range(100):  # up to 1 GiB, slowly enough for the supervisor to see it grow
        hoard.append(bytearray(10 * 1024 * 1024))
        time.sleep(0.02)
    time.sleep(60)


def _leak_thread() -> None:
    def stubborn() -> None:
        time.sleep(3600)  # a sleeping thread never sees the exception asking it to stop

    threading.Thread(target=stubborn, name="stubborn-leftover").start()


def _spin() -> None:
    while True:  # pure Python: any thread can be interrupted here
        pass


ACTIONS: dict[str, typing.Callable[[], object]] = {
    "gil_poison": _gil_poison,
    "regex": lambda: re.match(r"(a+)+$", "a" * 40 + "b"),
    "memory_hog": _memory_hog,
    "leak_thread": _leak_thread,
    "spin": _spin,
}


class ScenarioWorker(Worker):
    """Runs ``kwargs['action']``: ok, sleep, stop, respawn or one of ``ACTIONS``."""

    def generate_config(self) -> config.WorkerConfig:
        return config.WorkerConfig(
            name=QUEUE,
            connector=config.Connector(
                type="local", params={"file_path": os.environ["SERGEANT_TEST_BROKER"]}
            ),
            max_tasks_per_run=int(_setting("MAX_TASKS", "0")),
            tasks_per_transaction=int(_setting("PER_TRANSACTION", "1")),
            number_of_threads=int(_setting("THREADS", "1")),
            timeouts=config.Timeouts(
                timeout=float(_setting("TIMEOUT", "0")), grace_period=float(_setting("GRACE", "10"))
            ),
            lease_seconds=2,
            block_seconds=0.1,
            result_ttl_seconds=float(_setting("RESULT_TTL", "0")),
        )

    def work(self, task: Task) -> object:
        action = task.kwargs.get("action", "ok")
        _record("start", task)
        if action == "sleep":
            time.sleep(task.kwargs.get("seconds", 0.2))
        elif action == "stop":
            self.stop()
        elif action == "respawn":
            self.respawn()
        elif action in ACTIONS and _first_time(task):
            ACTIONS[action]()
        _record("done", task)
        return None

    def on_timeout(self, task: Task) -> None:
        _record("timeout", task)

    def on_stop(self, task: Task) -> None:
        _record("on_stop", task)


class ThreadedScenarioWorker(ScenarioWorker):
    """The same scenarios in the threaded executor (two threads)."""

    def generate_config(self) -> config.WorkerConfig:
        return super().generate_config().replace(number_of_threads=2)
