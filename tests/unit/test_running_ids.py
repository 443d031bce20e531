"""The ids file beside the running file: the supervisor finds which task each worker
runs (to stop a cancelled one holding the GIL), and never takes an old batch for it."""

from __future__ import annotations

import collections.abc
from pathlib import Path

import pytest

from sergeant.broker import running as _running
from sergeant.broker.running_ids import BatchIds, running_task_ids
from sergeant.connector import Delivery
from sergeant.objects import Task


@pytest.fixture
def running_file(tmp_path: Path) -> collections.abc.Iterator[str]:
    path = str(tmp_path / "running")
    _running.use_file(path)
    yield path
    _running.use_file(None)


def tasks(*ids: str) -> list[Task]:
    return [Task(kwargs={}, id=task_id) for task_id in ids]


def test_by_slot_names_the_running_task_and_not_an_old_batch(running_file: str) -> None:
    record = _running.RunningRecord(1, "slot")
    ids = BatchIds(record.form)
    batch = [Delivery(b"", "", 7, 1, 0, slot) for slot in (1, 2, 3)]
    words, field = record.batch_marks(batch[0])
    ids.note(tasks("a", "b", "c"), batch)
    words[_running.MARK] = batch[1][field]  # type: ignore[assignment]
    assert running_task_ids(running_file) == {"b": (7, 2)}
    words[_running.MARK] = 0
    assert running_task_ids(running_file) == {}
    # The running file names batch 8 before its ids are written: nothing is claimed.
    words, field = record.batch_marks(Delivery(b"", "", 8, 1, 0, 1))
    words[_running.MARK] = 1
    assert running_task_ids(running_file) == {}
    ids.close()


def test_by_slot_with_a_gap_in_the_batch(running_file: str) -> None:
    record = _running.RunningRecord(1, "slot")
    ids = BatchIds(record.form)
    batch = [Delivery(b"", "", 9, 1, 0, slot) for slot in (1, 3)]  # slot 2 did not decode
    words, field = record.batch_marks(batch[0])
    ids.note(tasks("a", "c"), batch)
    words[_running.MARK] = batch[1][field]  # type: ignore[assignment]
    assert running_task_ids(running_file) == {"c": (9, 3)}
    ids.close()


def test_by_token_and_the_wide_form(running_file: str) -> None:
    record = _running.RunningRecord(1, "token")
    ids = BatchIds(record.form)
    batch = [Delivery(b"", "", token, 1) for token in (41, 17)]
    words, field = record.batch_marks(batch[0])
    ids.note(tasks("x", "y"), batch)
    words[_running.MARK] = batch[1][field]  # type: ignore[assignment]
    assert running_task_ids(running_file) == {"y": (17, 0)}
    ids.close()

    wide = _running.RunningRecord(2)  # two threads; a 128-bit MongoDB token
    ids = BatchIds(wide.form)
    big = [Delivery(b"", "i1", 1 << 100, 1), Delivery(b"", "i2", (1 << 100) + 1, 1)]
    ids.note(tasks("p", "q"), big)
    wide.start(0, big[0])
    wide.start(1, big[1])
    assert running_task_ids(running_file) == {"p": (1 << 100, 0), "q": ((1 << 100) + 1, 0)}
    ids.close()


def test_no_supervisor_no_file(tmp_path: Path) -> None:
    ids = BatchIds(_running.BY_SLOT)
    ids.note(tasks("a"), [Delivery(b"", "", 1, 1, 0, 1)])
    ids.close()
    assert list(tmp_path.iterdir()) == []
    assert running_task_ids(str(tmp_path / "missing")) == {}
