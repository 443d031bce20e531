"""The kill note: what the worker hands its watchdog, and what the watchdog stores."""

from __future__ import annotations

import pytest

from sergeant.broker import KILLED_AFTER_TIMEOUT, Broker, kill_note
from sergeant.broker.kill_note import KillNote
from sergeant.connector import create
from sergeant.encoder import Encoder
from sergeant.objects import Task


def test_kill_note_round_trips_through_json() -> None:
    """The note the watchdog reads back is the one the worker wrote."""
    note = KillNote("redis", {"nodes": [{"host": "h", "port": 1}]}, "q")
    assert KillNote.from_json(note.to_json()) == note


def test_kill_note_with_params_that_are_not_json_cannot_be_sent() -> None:
    """Params that are not JSON raise (the watchdog then runs without notes)."""
    with pytest.raises(TypeError):
        KillNote("local", {"file_path": object()}, "q").to_json()


def test_written_kill_note_names_the_dead_letter_reason(memory_name: str) -> None:
    """A note the watchdog writes makes the task's dead letter 'killed after timeout'
    (here in one process: the note opens its own connector on the same store)."""
    params = {"name": memory_name}
    broker = Broker(create("memory", params), Encoder())
    task = Task(kwargs={})
    broker.push_tasks("q", [task])
    [leased] = broker.lease_tasks("q", 1, "w", 1.0, max_deliveries=1)
    broker.connector.extend_leases("q", [leased.delivery], -1.0)
    assert broker.reclaim("q", 0).requeued == 1
    KillNote.from_json(KillNote("memory", params, "q").to_json()).write(task.id, 0.25)
    assert broker.lease_tasks("q", 1, "w", 1.0, max_deliveries=1) == []
    [(_, dead)] = broker.dead_tasks("q")
    assert (dead.reason, dead.error) == (KILLED_AFTER_TIMEOUT, kill_note.text(0.25))
    broker.connector.close()


def test_kill_note_that_cannot_be_written_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    """A broker that cannot be reached loses the note, never the watchdog."""
    KillNote("no-such-connector", {}, "q").write("t", 0.0)
    assert [r.event for r in caplog.records] == ["kill_note_failed"]  # type: ignore[attr-defined]
