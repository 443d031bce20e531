"""The operator commands against real brokers: stats, push, purge, dead list/show/requeue/purge."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import typing
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from sergeant.cli import main
from sergeant.cli.dead import DeadRow
from sergeant.config import Connector
from sergeant.connector import create
from sergeant.connector.base import Connector as BaseConnector
from sergeant.ops.stats import QueueStats
from tests.servers import RedisServer, wait_until


@pytest.fixture(params=["redis", "local"])
def broker_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A broker URL: the session's private Redis (emptied) or a fresh SQLite file."""
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        server.flush()
        return f"redis://127.0.0.1:{server.port}/0"
    return f"sqlite:///{tmp_path}/broker.sqlite3"


@pytest.fixture
def connector(broker_url: str) -> typing.Iterator[BaseConnector]:
    """A connector on the same broker, to set up and check state behind the CLI's back."""
    config = Connector.from_url(broker_url)
    conn = create(config.type, config.params)
    yield conn
    conn.close()


def sergeant(*args: str, stdin: str | None = None) -> Result:
    result = CliRunner().invoke(main, list(args), input=stdin, catch_exceptions=False)
    return result


def stats(broker_url: str, queue: str) -> dict[str, typing.Any]:
    result = sergeant("stats", "-b", broker_url, queue, "--json")
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.output)["queues"]
    return typing.cast(dict[str, typing.Any], row)


COUNTS = ("queue", "ready", "delayed", "leased", "dead")


def counts(broker_url: str, queue: str) -> dict[str, typing.Any]:
    """The task counts of ``stats --json`` (without the rate and the workers)."""
    row = stats(broker_url, queue)
    return {key: row[key] for key in COUNTS}


def test_push_then_stats_counts_ready_and_delayed(broker_url: str) -> None:
    """push enqueues tasks (now, delayed, HIGH); stats --json counts them."""
    assert (
        sergeant("push", "-b", broker_url, "q", "--kwargs", '{"a": 1}', "--count", "3").exit_code
        == 0
    )
    assert (
        sergeant("push", "-b", broker_url, "q", "--kwargs", "{}", "--delay", "3600").exit_code == 0
    )
    result = sergeant("push", "-b", broker_url, "q", "--kwargs", "{}", "--priority", "HIGH")
    assert len(result.output.split()) == 1  # the task id
    row = stats(broker_url, "q")
    assert {key: row[key] for key in COUNTS} == {
        "queue": "q",
        "ready": 4,
        "delayed": 1,
        "leased": 0,
        "dead": 0,
    }
    assert (row["ready_high"], row["ready_normal"]) == (1, 3)
    assert (row["workers"], row["done_last_minute"]) == ([], 0)
    assert list(row) == list(QueueStats.__annotations__)  # the record's keys, in order


def test_stats_counts_leased_and_dead(broker_url: str, connector: BaseConnector) -> None:
    """Tasks under lease and dead tasks show in their own columns."""
    connector.push_many("q", [b"a", b"b", b"c"])
    leased = connector.lease_many("q", 2, "w", 60)
    connector.dead_letter_many("q", leased[:1], "max retries", "boom")
    assert counts(broker_url, "q") == {
        "queue": "q",
        "ready": 1,
        "delayed": 0,
        "leased": 1,
        "dead": 1,
    }
    table = sergeant("stats", "-b", broker_url, "q")
    assert table.exit_code == 0
    assert "leased" in table.output


def test_stats_shows_live_workers_their_current_task_and_rate(
    broker_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A running worker is listed with its current task and last-minute count; gone on exit."""
    from tests.workers import ops

    monkeypatch.setenv("SERGEANT_TEST_BROKER_URL", broker_url)
    monkeypatch.setenv("SERGEANT_TEST_MAX_TASKS", "2")
    ops.RELEASE.clear()
    with ops.OpsWorker() as worker:
        worker.init_worker()
        worker.push_task({"value": 1})
        held = worker.push_task({"hold": True})
        loop = threading.Thread(target=worker.work_loop)
        loop.start()
        try:

            def listed() -> bool:
                row = stats(broker_url, "ops")
                [worker_row] = row["workers"]
                current = worker_row["current_task_id"] == held
                # The finished task's acknowledgement goes while the held one runs.
                return bool(current and (row["leased"], row["done_last_minute"]) == (1, 1))

            wait_until(listed, timeout=20, message="the worker's heartbeat with its current task")
            row = stats(broker_url, "ops")
            assert row["workers"][0]["pid"] == os.getpid()
            table = sergeant("stats", "-b", broker_url, "ops").output
            assert "live workers" in table
            assert held[:8] in table
        finally:
            ops.RELEASE.set()
            loop.join(timeout=30)
    assert stats(broker_url, "ops")["workers"] == []  # unregistered on exit


def test_stats_shows_the_running_tasks_progress(
    broker_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """stats --json (and the table) show the running task's last set_progress value."""
    from tests.workers import ops

    monkeypatch.setenv("SERGEANT_TEST_BROKER_URL", broker_url)
    monkeypatch.setenv("SERGEANT_TEST_MAX_TASKS", "1")
    monkeypatch.setenv("COLUMNS", "200")  # the table's cells unfolded
    ops.RELEASE.clear()
    with ops.OpsWorker() as worker:
        worker.init_worker()
        held = worker.push_task({"progress": 0.4, "message": "page 4 of 10", "hold": True})
        loop = threading.Thread(target=worker.work_loop)
        loop.start()
        try:

            def reported() -> bool:
                [worker_row] = stats(broker_url, "ops")["workers"]
                return bool(
                    worker_row["current_task_id"] == held
                    and worker_row["current_task_progress"]
                    == {"fraction": 0.4, "message": "page 4 of 10"}
                )

            wait_until(reported, timeout=20, message="the heartbeat with the task's progress")
            table = sergeant("stats", "-b", broker_url, "ops").output
            assert "40% page 4 of 10" in table
        finally:
            ops.RELEASE.set()
            loop.join(timeout=30)
        progress = worker.get_progress(held)
        assert progress is not None
        assert (progress.fraction, progress.message) == (0.4, "page 4 of 10")


def test_purge_asks_then_empties(broker_url: str, connector: BaseConnector) -> None:
    """purge asks first (no keeps everything); --yes empties the queue."""
    connector.push_many("q", [b"a", b"b"])
    refused = sergeant("purge", "-b", broker_url, "q", stdin="n\n")
    assert refused.exit_code == 1
    assert connector.length("q") == 2
    done = sergeant("purge", "-b", broker_url, "q", "--yes")
    assert "purged 2 tasks" in done.output
    assert connector.length("q") == 0


def test_dead_list_show_requeue_and_the_tasks_run(
    broker_url: str, connector: BaseConnector, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dead tasks are listed with reason and error, shown in full, requeued, and then run."""
    monkeypatch.setenv("SERGEANT_TEST_BROKER_URL", broker_url)
    target = "tests.workers.cli_target:UrlWorker"
    assert sergeant("push", "-b", target, "cli-jobs", "--kwargs", '{"x": 1}').exit_code == 0
    [delivery] = connector.lease_many("cli-jobs", 1, "w", 60)
    connector.dead_letter_many("cli-jobs", [delivery], "worker died", "SIGKILL")

    listed = json.loads(sergeant("dead", "list", "-b", target, "cli-jobs", "--json").output)
    assert [(row["reason"], row["error"], row["kwargs"]) for row in listed] == [
        ("worker died", "SIGKILL", {"x": 1})
    ]
    assert list(listed[0]) == list(DeadRow.__annotations__)  # the record's keys, in order
    shown = json.loads(
        sergeant("dead", "show", "-b", target, "cli-jobs", listed[0]["item_id"]).output
    )
    assert shown["task_id"] == listed[0]["task_id"]
    assert sergeant("dead", "show", "-b", target, "cli-jobs", "nope").exit_code == 1

    assert "requeued 1" in sergeant("dead", "requeue", "-b", target, "cli-jobs").output
    assert stats(broker_url, "cli-jobs")["dead"] == 0

    from tests.workers.cli_target import UrlWorker

    with UrlWorker() as worker:
        worker.init_worker()
        summary = worker.work_loop()
    assert summary["tasks_done"] == 1
    assert counts(broker_url, "cli-jobs") == {
        "queue": "cli-jobs", "ready": 0, "delayed": 0, "leased": 0, "dead": 0,
    }  # fmt: skip


def test_dead_purge(broker_url: str, connector: BaseConnector) -> None:
    """dead purge --yes deletes the dead tasks."""
    connector.push_many("q", [b"a", b"b"])
    connector.dead_letter_many("q", connector.lease_many("q", 2, "w", 60), "test")
    assert "purged 2 dead" in sergeant("dead", "purge", "-b", broker_url, "q", "--yes").output
    assert connector.dead_count("q") == 0


def test_bad_input_gets_a_clear_error(broker_url: str) -> None:
    """Malformed kwargs, bad URLs and missing queues are reported, not tracebacks."""
    bad_json = sergeant("push", "-b", broker_url, "q", "--kwargs", "{nope")
    assert bad_json.exit_code == 2
    assert "not JSON" in bad_json.output
    bad_url = sergeant("stats", "-b", "http://example/", "q")
    schemes = "redis://, rediss://, redis+cluster://, mongodb://, sqlite:/// or memory://"
    assert f"use {schemes}" in bad_url.output
    assert sergeant("push", "-b", broker_url, "q", "--kwargs", "{}").exit_code == 0
    assert "name the QUEUE" in sergeant("stats", "-b", broker_url).output


def test_every_command_help_has_an_example() -> None:
    """Each sub-command's --help shows an example invocation."""
    for command in (["stats"], ["purge"], ["push"], ["dead", "list"], ["dead", "requeue"], ["run"]):
        result = sergeant(*command, "--help")
        assert result.exit_code == 0
        assert "Example" in result.output or "example" in result.output, command


def test_unreachable_broker_is_one_clear_error() -> None:
    """A broker that does not answer gives one sentence naming it (pytest-timeout bounds it)."""
    result = sergeant("stats", "-b", "redis://127.0.0.1:1/0", "q")
    assert result.exit_code == 1
    assert "127.0.0.1:1" in result.output
    assert "Traceback" not in result.output


def test_unimportable_worker_spec_is_one_clear_sentence() -> None:
    """-b module:Class naming a missing module or class says which, without a traceback."""
    missing_module = sergeant("stats", "-b", "no_such_module_xyz:Worker")
    assert missing_module.exit_code == 2
    assert "Cannot import worker module 'no_such_module_xyz'" in missing_module.output
    missing_class = sergeant("stats", "-b", "tests.workers.cli_target:NoSuchWorker")
    assert "has no class 'NoSuchWorker'" in missing_class.output
    assert "Traceback" not in missing_module.output + missing_class.output


def test_the_demo_never_touches_the_default_broker_file(tmp_path: Path) -> None:
    """`sergeant demo` runs on a file of its own, not the shared 0.27 default."""
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "sergeant.cli", "demo", "--tasks", "10", "--workers", "1"],
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    assert (tmp_path / "sergeant_demo.sqlite3").exists()
    assert not (tmp_path / "sergeant_default_db.sqlite3").exists()


def test_stats_lists_the_largest_groups(broker_url: str, connector: BaseConnector) -> None:
    """Grouped tasks: stats shows each group's running and ready tasks, largest first."""
    connector.push_grouped("q", [b"a", b"b", b"c", b"d"], ["big", "big", "big", "small"])
    connector.lease_many("q", 1, "w", 60)  # the ring starts at the first group pushed
    result = sergeant("stats", "-b", broker_url, "q", "--json")
    assert json.loads(result.output)["groups"] == {
        "q": [
            {"group": "big", "running": 1, "ready": 2},
            {"group": "small", "running": 0, "ready": 1},
        ]
    }
    table = sergeant("stats", "-b", broker_url, "q")
    assert "largest groups" in table.output
    assert "small" in table.output
