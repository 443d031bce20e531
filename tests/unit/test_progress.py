"""The progress book: the latest value kept, writes throttled, the pending one flushed."""

from __future__ import annotations

import logging
import typing

import orjson
import pytest

from sergeant.broker import Broker
from sergeant.broker.progress import MESSAGE_MAX_CHARS, progress_key
from sergeant.connector import memory
from sergeant.consume import progress as _progress
from sergeant.encoder import Encoder
from sergeant.errors import BrokerUnavailable
from sergeant.objects import Progress


@pytest.fixture
def broker(memory_name: str) -> typing.Iterator[Broker]:
    broker = Broker(memory.Connector(name=memory_name), Encoder("pickle", None))
    yield broker
    broker.close()


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_writes_once_per_interval_and_flushes_the_last_value(
    broker: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    monkeypatch.setattr("sergeant.consume.progress.time.monotonic", clock)
    writes: list[Progress] = []
    store = broker.store_progress

    def counted(task_id: str, progress: Progress, ttl_seconds: float) -> None:
        writes.append(progress)
        store(task_id, progress, ttl_seconds)

    monkeypatch.setattr(broker, "store_progress", counted)
    book = _progress.ProgressBook(broker, 60.0)
    book.report("t", 0.1, "first")  # the first value is written at once
    for step in range(2, 100):
        book.report("t", step / 100, f"step {step}")
    assert [(p.fraction, p.message) for p in writes] == [(0.1, "first")]
    assert book.latest("t") == (0.99, "step 99")
    clock.now += _progress.WRITE_INTERVAL_SECONDS
    book.report("t", 0.995, None)  # due again
    assert len(writes) == 2
    book.finish("t")  # nothing pending: no write
    assert len(writes) == 2
    assert book.cells == {}
    book.report("u", 0.2, None)
    book.report("u", 0.3, "last")
    book.finish("u")
    assert broker.fetch_progress("u")[:2] == (0.3, "last")  # type: ignore[index]
    assert book.latest("u") is None


def test_the_record_is_compact_json(broker: Broker) -> None:
    broker.store_progress("t", Progress(1, "m" * 5_000, 123.5), 60.0)
    data = broker.connector.key_get(progress_key("t"))
    assert data is not None
    record = orjson.loads(data)
    assert record == {"fraction": 1.0, "message": "m" * MESSAGE_MAX_CHARS, "updated_at": 123.5}
    broker.connector.key_set(progress_key("bad"), b"not json", 60.0)
    assert broker.fetch_progress("bad") is None


def test_a_broker_fault_is_logged_not_raised(
    broker: Broker, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse(task_id: str, progress: Progress, ttl_seconds: float) -> None:
        raise BrokerUnavailable("down")

    monkeypatch.setattr(broker, "store_progress", refuse)
    book = _progress.ProgressBook(broker, 60.0)
    with caplog.at_level(logging.WARNING, logger="sergeant.progress"):
        book.report("t", 0.5, None)
        book.report("t", 0.6, None)
        book.finish("t")
    assert "could not store the progress of task t: down" in caplog.text
    assert caplog.text.count("could not store") == 1  # once a minute at most
