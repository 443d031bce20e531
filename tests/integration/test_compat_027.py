"""Sergeant 0.27's public behaviour, held through the public API on real brokers and processes."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import typing
from collections.abc import Iterator
from pathlib import Path

import pytest

import sergeant
from sergeant import config
from sergeant.logging.logstash import BufferedLogstashHandler, LogstashHandler
from sergeant.objects import Task
from sergeant.worker import Worker, WorkerRetry
from tests.servers import free_port, wait_until
from tests.workers.scenario import ScenarioWorker, environment

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SUMMARY_KEYS_027 = {
    "start_time",
    "end_time",
    "executor_exception",
    "initialize_exception",
    "finalize_exception",
    "executor",
    "respawn",
    "stop",
}
FAILED_LINE = "sending log entry to the logstash server has failed: "


class Retrier(Worker):
    """Retries every task until ``max_retries``; records what the hooks see."""

    def __init__(self, broker: str) -> None:
        self.broker_path = broker
        self.retries: list[int] = []
        self.max_retries_seen: list[int] = []
        self.requeued: list[int] = []
        super().__init__()

    def generate_config(self) -> config.WorkerConfig:
        return config.WorkerConfig(
            name="compat-retry",
            connector=config.Connector(type="local", params={"file_path": self.broker_path}),
            max_retries=2,
            max_tasks_per_run=3,
            block_seconds=0.1,
        )

    def work(self, task: Task) -> None:
        if task.kwargs.get("requeue_after_retry"):
            try:
                self.retry(task)
            except WorkerRetry:
                self.requeue(task)
        self.retry(task)

    def on_retry(self, task: Task) -> None:
        self.retries.append(task.run_count)

    def on_requeue(self, task: Task) -> None:
        self.requeued.append(task.run_count)

    def on_max_retries(self, task: Task) -> None:
        self.max_retries_seen.append(task.run_count)


# -- work_loop's summary ------------------------------------------------------------------


def test_work_loop_returns_a_plain_dict_with_the_0_27_keys(tmp_path: Path) -> None:
    """work_loop() returns a dict: exactly 0.27's keys plus the documented tasks_done."""

    class Once(Worker):
        def generate_config(self) -> config.WorkerConfig:
            params = {"file_path": str(tmp_path / "b.sqlite3")}
            return config.WorkerConfig(
                name="compat-summary",
                connector=config.Connector(type="local", params=params),
                max_tasks_per_run=1,
            )

    with Once() as worker:
        worker.init_worker()
        worker.push_task({"n": 1})
        summary = worker.work_loop()
    assert isinstance(summary, dict)
    assert set(summary) == SUMMARY_KEYS_027 | {"tasks_done"}
    assert summary.get("stop") is False
    assert summary.get("tasks_done") == 1
    assert dict(summary.items())["respawn"] is False
    assert summary["end_time"] >= summary["start_time"]
    assert set(summary["executor"]) == {"cpu_utilization", "total_wall_time", "total_cpu_time"}
    assert json.loads(json.dumps(summary, default=str))["executor_exception"] is None


def test_failed_initialize_still_gives_every_key(tmp_path: Path) -> None:
    """A summary cut short by initialize() carries every key, the exception in its own."""

    class Broken(Worker):
        def generate_config(self) -> config.WorkerConfig:
            params = {"file_path": str(tmp_path / "b.sqlite3")}
            return config.WorkerConfig(
                name="compat-broken", connector=config.Connector(type="local", params=params)
            )

        def initialize(self) -> None:
            raise RuntimeError("no database")

    with Broken() as worker:
        worker.init_worker()
        summary = worker.work_loop()
    assert set(summary) == SUMMARY_KEYS_027 | {"tasks_done"}
    assert isinstance(summary["initialize_exception"], RuntimeError)
    assert summary["executor"] == {}


# -- a bare Worker -----------------------------------------------------------------------


def test_bare_worker_has_the_default_config() -> None:
    """Worker() without generate_config() gets WorkerConfig(name='worker'), as in 0.27."""
    worker = sergeant.worker.Worker()
    assert worker.config == config.WorkerConfig(name="worker")


# -- retry ------------------------------------------------------------------------------


def test_on_retry_sees_the_incremented_run_count(tmp_path: Path) -> None:
    """retry() bumps task.run_count in place: on_retry sees 1, 2; max_retries=2 allows 3 runs."""
    with Retrier(str(tmp_path / "b.sqlite3")) as worker:
        worker.init_worker()
        worker.push_task({})
        summary = worker.work_loop()
        assert summary["tasks_done"] == 3
        assert worker.retries == [1, 2]
        assert worker.max_retries_seen == [2]
        assert worker.number_of_enqueued_tasks(include_delayed=True) == 0


def test_requeue_after_a_caught_retry_pushes_the_new_count(tmp_path: Path) -> None:
    """A requeue() after catching WorkerRetry pushes the task with the bumped run_count."""
    with Retrier(str(tmp_path / "b.sqlite3")) as worker:
        worker.init_broker()
        worker.push_task({"requeue_after_retry": True})
        [task] = worker.get_next_tasks(1)
        with pytest.raises(sergeant.worker.WorkerRequeue):
            worker.work(task)
        assert task.run_count == 1
        assert sorted(t.run_count for t in worker.get_next_tasks(10)) == [1, 1]


# -- logstash ---------------------------------------------------------------------------


class LineServer:
    """A TCP listener on 127.0.0.1 that collects the JSON lines it receives."""

    def __init__(self, port: int = 0) -> None:
        self.listener = socket.create_server(("127.0.0.1", port))
        self.port: int = self.listener.getsockname()[1]
        self.documents: list[dict[str, typing.Any]] = []
        self._connections: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self._connections.append(connection)
            threading.Thread(target=self._read, args=(connection,), daemon=True).start()

    def _read(self, connection: socket.socket) -> None:
        # A reset ends the stream; only whole lines count.
        with connection, contextlib.suppress(OSError), connection.makefile("rb") as stream:
            for line in stream:
                if line.endswith(b"\n"):
                    self.documents.append(json.loads(line))

    def close(self) -> None:
        """Stop listening and drop every connection (the peer sees a reset)."""
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        self.listener.close()
        self._thread.join(timeout=10)
        for connection in self._connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def line_server() -> Iterator[LineServer]:
    server = LineServer()
    yield server
    server.close()


def _logger(handler: logging.Handler) -> logging.Logger:
    logger = logging.getLogger(f"compat-logstash-{id(handler)}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    return logger


@pytest.mark.parametrize("buffered", [False, True])
def test_logstash_receives_the_0_27_shape(line_server: LineServer, buffered: bool) -> None:
    """A real TCP listener gets 0.27's fields: @timestamp, message, level, name, emitter, extra."""
    handler: LogstashHandler = (
        BufferedLogstashHandler("127.0.0.1", line_server.port, chunk_size=2)
        if buffered
        else LogstashHandler("127.0.0.1", line_server.port)
    )
    logger = _logger(handler)
    try:
        logger.info("hello %s", "world", extra={"event": "greeting", "task_id": "t1"})
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("it failed")
        wait_until(lambda: len(line_server.documents) == 2, timeout=30, message="two records")
    finally:
        handler.close()
        handler.close()  # again, as logging.shutdown() does at exit: harmless
    first, second = line_server.documents
    assert {"@timestamp", "message", "level", "name", "emitter", "extra"} <= set(first)
    assert (first["message"], first["level"], first["name"]) == (
        "hello world",
        "INFO",
        logger.name,
    )
    emitter = first["emitter"]
    assert {"hostname", "ipaddress", "pathname", "function", "line"} <= set(emitter)
    assert emitter["hostname"] == socket.gethostname()
    assert emitter["function"] == "test_logstash_receives_the_0_27_shape"
    assert emitter["pathname"] == __file__
    assert isinstance(emitter["line"], int)
    assert first["extra"] == {"event": "greeting", "task_id": "t1"}
    assert second["level"] == "ERROR"
    assert second["exception"]["type"] == "ValueError"
    assert second["exception"]["message"] == "boom"
    assert "Traceback" in second["exception"]["stacktrace"]


def test_refused_connection_prints_the_0_27_line_once_per_state_change(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Logstash down: the 0.27 line once, not per record; again only after a success."""
    port = free_port()
    handler = LogstashHandler("127.0.0.1", port, timeout=2.0)
    logger = _logger(handler)
    try:
        for n in range(5):
            logger.error("record %d", n)
        assert capsys.readouterr().out.count(FAILED_LINE) == 1
        server = LineServer(port)
        try:
            logger.error("back")
            wait_until(lambda: len(server.documents) == 1, timeout=30, message="a record")
            assert FAILED_LINE not in capsys.readouterr().out
        finally:
            server.close()
        # The kept connection may swallow a record or two before the peer's reset shows.
        printed: list[str] = []

        def failure_reported() -> bool:
            logger.error("lost")
            printed.append(capsys.readouterr().out)
            return FAILED_LINE in printed[-1]

        wait_until(failure_reported, timeout=30, message="the failure line")
        for n in range(5):
            logger.error("still down %d", n)
        assert "".join(printed).count(FAILED_LINE) + capsys.readouterr().out.count(FAILED_LINE) == 1
    finally:
        handler.close()


def test_a_log_call_never_raises_whatever_the_socket_raises(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A host the resolver rejects with UnicodeError (not OSError): no raise, one line."""
    for handler in (
        LogstashHandler("a" * 100 + ".example", 5959),
        BufferedLogstashHandler("a" * 100 + ".example", 5959, chunk_size=1),
    ):
        logger = _logger(handler)
        try:
            logger.error("one")
            logger.error("two")
        finally:
            handler.close()
        out = capsys.readouterr().out
        assert out.count(FAILED_LINE) == 1, out


# -- locks ------------------------------------------------------------------------------


def test_redis_lock_set_ttl_zero_frees_it(redis_node: dict[str, typing.Any]) -> None:
    """On Redis, set_ttl(0) then get_ttl() is None and the lock is free, as in 0.27."""

    class OnRedis(Worker):
        def generate_config(self) -> config.WorkerConfig:
            connector = config.Connector(type="redis", params={"nodes": [redis_node]})
            return config.WorkerConfig(name="compat-lock", connector=connector)

    with OnRedis() as worker:
        worker.init_broker()
        lock = worker.lock("compat")
        assert lock.acquire(timeout=1, ttl=60)
        assert lock.set_ttl(0) is True
        assert lock.get_ttl() is None
        assert lock.is_locked() is False
        assert worker.lock("compat").acquire(timeout=1)


# -- the supervisor's default output ----------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_supervisor_prints_spawned_finished_respawned_at_info_by_default(
    tmp_path: Path,
) -> None:
    """python -m sergeant.supervisor with no --log-level prints the lifecycle lines."""
    broker, ledger = str(tmp_path / "b.sqlite3"), str(tmp_path / "ledger")
    env = environment(broker, ledger, max_tasks=1)
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        with ScenarioWorker() as producer:
            producer.init_broker()
            producer.push_tasks([{"action": "ok"}, {"action": "stop"}])
    command = [
        sys.executable, "-m", "sergeant.supervisor", "--worker-module", "tests.workers.scenario",
        "--worker-class", "ScenarioWorker", "--concurrent-workers", "1",
    ]  # fmt: skip
    done = subprocess.run(
        command,
        cwd=PROJECT_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("worker 0 started (pid") == 2, done.stderr
    assert "ended: DONE; respawning in" in done.stderr, done.stderr
    assert "ended: a task called stop()" in done.stderr, done.stderr
