"""Results on demand: ``result_ttl_seconds`` stores outcomes, ``get_result`` fetches them."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from sergeant.errors import ResultTimeout, TaskFailed
from tests.servers import RedisServer, wait_until
from tests.workers.ops import OpsWorker


@pytest.fixture(params=["redis", "local"])
def worker(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> OpsWorker:
    """An ``OpsWorker`` keeping results 60 s, on the private Redis or a SQLite file."""
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        server.flush()
        url = f"redis://127.0.0.1:{server.port}/0"
    else:
        url = f"sqlite:///{tmp_path}/broker.sqlite3"
    monkeypatch.setenv("SERGEANT_TEST_BROKER_URL", url)
    monkeypatch.setenv("SERGEANT_TEST_MAX_TASKS", "2")
    ops = OpsWorker()
    ops.init_worker()
    return ops


def test_get_result_returns_the_value_or_raises_the_failure(worker: OpsWorker) -> None:
    """A finished task's return value comes back; a failed one raises TaskFailed."""
    done = worker.push_task({"value": {"size": 42}})
    failed = worker.push_task({"fail": "bad url"})
    assert worker.work_loop()["tasks_done"] == 2
    assert worker.get_result(done, timeout=0) == {"size": 42}
    with pytest.raises(TaskFailed) as error:
        worker.get_result(failed, timeout=0)
    assert (error.value.task_id, error.value.error_type) == (failed, "ValueError")
    assert error.value.error_message == "asked to fail: bad url"
    worker.close()


def test_get_result_waits_for_a_running_task(worker: OpsWorker) -> None:
    """get_result blocks until the worker stores the result, then returns it."""
    first = worker.push_task({"value": 1, "sleep": 0.3})
    worker.push_task({"value": 2})
    loop = threading.Thread(target=worker.work_loop)
    loop.start()
    try:
        assert worker.get_result(first, timeout=20) == 1
    finally:
        loop.join(timeout=30)
        worker.close()


def test_an_unfinished_task_times_out_with_a_clear_error(worker: OpsWorker) -> None:
    """No result within the timeout raises ResultTimeout naming the task and the causes."""
    pending = worker.push_task({"value": 1})
    started = time.monotonic()
    with pytest.raises(ResultTimeout, match=f"no result for task {pending} within 0.2s"):
        worker.get_result(pending, timeout=0.2)
    assert time.monotonic() - started < 10
    worker.close()


def test_a_stored_result_expires_after_its_ttl(
    worker: OpsWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A result is gone once result_ttl_seconds have passed."""
    monkeypatch.setenv("SERGEANT_TEST_RESULT_TTL", "0.5")
    monkeypatch.setenv("SERGEANT_TEST_MAX_TASKS", "1")
    short = OpsWorker()
    short.init_worker()
    task_id = short.push_task({"value": "soon gone"})
    short.work_loop()
    assert short.get_result(task_id, timeout=0) == "soon gone"

    def expired() -> bool:
        try:
            short.get_result(task_id, timeout=0)
        except ResultTimeout:
            return True
        return False

    wait_until(expired, timeout=10, message="the result to expire")
    short.close()
    worker.close()
