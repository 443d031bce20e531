"""The parent watch of supervised workers, in this process with its signals recorded."""

from __future__ import annotations

import logging
import os
import signal

import pytest

from sergeant.process import parent as _parent
from tests.servers import wait_until

#: Not this process's parent: the watch sees its "supervisor" gone at once.
NOT_OUR_PARENT = os.getppid() + 100_000


@pytest.fixture
def signals(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """What the watch sends to this process (recorded, not sent) and when it kills its tree."""
    sent: list[tuple[str, int]] = []
    monkeypatch.setattr(_parent, "WATCH_SECONDS", 0.01)
    monkeypatch.setattr(_parent, "EXIT_MARGIN_SECONDS", 0.0)

    def kill(pid: int, signum: int) -> None:
        sent.append(("kill", signum))

    def kill_tree(pid: int) -> list[int]:
        sent.append(("kill_tree", pid))
        return []

    monkeypatch.setattr(os, "kill", kill)
    monkeypatch.setattr(_parent, "kill_tree", kill_tree)
    return sent


def _watch_until_it_ends(stopping: bool) -> None:
    watcher = _parent.ParentWatch(NOT_OUR_PARENT, lambda: 0.0, lambda: stopping)
    watcher.start()
    watcher.join(timeout=10)
    assert not watcher.is_alive()


def test_without_the_kernel_the_watch_sends_sigterm_then_kills_after_the_grace(
    signals: list[tuple[str, int]], caplog: pytest.LogCaptureFixture
) -> None:
    """The polling path: SIGTERM for the graceful stop, then the bounded exit."""
    with caplog.at_level(logging.WARNING, logger="sergeant.process.parent"):
        _watch_until_it_ends(stopping=False)
    assert signals == [
        ("kill", signal.SIGTERM),
        ("kill_tree", os.getpid()),
        ("kill", signal.SIGKILL),
    ]
    assert [getattr(record, "event", None) for record in caplog.records] == [
        "supervisor_gone",
        "orphan_killed",
    ]


def test_no_second_sigterm_when_the_worker_is_stopping_already(
    signals: list[tuple[str, int]],
) -> None:
    """A second SIGTERM would kill the worker at once: only the bounded exit remains."""
    _watch_until_it_ends(stopping=True)
    assert signals == [("kill_tree", os.getpid()), ("kill", signal.SIGKILL)]


def test_a_death_signal_while_the_parent_lives_stops_nothing(
    signals: list[tuple[str, int]],
) -> None:
    """The kernel's signal only wakes the watch; the parent's pid decides."""
    watcher = _parent.ParentWatch(os.getppid(), lambda: 0.0, lambda: False)
    watcher.start()
    watcher.wake()
    wait_until(lambda: not watcher.woken.is_set(), timeout=10, message="the watch to look")
    assert signals == []
    assert watcher.is_alive()


def test_a_parent_gone_before_the_watch_ends_the_worker_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Its death cannot trigger the kernel's signal any more: the caller ends now."""
    monkeypatch.setattr(_parent, "request_death_signal", lambda signum: True)
    assert _parent.watch(NOT_OUR_PARENT, lambda: 0.0, lambda: False) is False
