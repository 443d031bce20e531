"""How the operator commands find their broker and queue, and what they refuse.

A ``module:Class`` target names its queue, so ``QUEUE`` is optional with one;
read-only commands never create a SQLite broker, and ``push`` never creates a
directory; odd URLs fail naming the path or URL they resolved to; ids are shown
in full at 80 columns.
"""

from __future__ import annotations

import json
import re
import typing
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from sergeant.cli import main
from sergeant.config import Connector
from sergeant.connector import create
from sergeant.connector.base import Connector as BaseConnector
from tests.servers import RedisServer

TARGET = "tests.workers.cli_target:UrlWorker"  # its config names the queue 'cli-jobs'


def sergeant(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=stdin, env=env, catch_exceptions=False)


def tree(path: Path) -> list[str]:
    """Every file and directory under ``path``, to show a command created nothing."""
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


@pytest.fixture(params=["redis", "local"])
def broker_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The session's private Redis (emptied) or a SQLite file that exists."""
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        server.flush()
        return server.url
    url = f"sqlite:///{tmp_path}/broker.sqlite3"
    config = Connector.from_url(url)
    made = create(config.type, config.params)
    made.length("q")  # the first call creates the file
    made.close()
    return url


@pytest.fixture
def connector(broker_url: str) -> typing.Iterator[BaseConnector]:
    config = Connector.from_url(broker_url)
    conn = create(config.type, config.params)
    yield conn
    conn.close()


@pytest.fixture
def target(broker_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """``-b module:Class`` for a worker class on ``broker_url``, queue 'cli-jobs'."""
    monkeypatch.setenv("SERGEANT_TEST_BROKER_URL", broker_url)
    return TARGET


def stats_row(spec: str, *queues: str) -> dict[str, typing.Any]:
    result = sergeant("stats", "-b", spec, *queues, "--json")
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.output)["queues"]
    return typing.cast(dict[str, typing.Any], row)


def _with_broker(command: list[str], spec: str) -> list[str]:
    """``command`` with ``-b spec`` after its (sub-)command name."""
    split = 2 if command[0] == "dead" else 1
    return [*command[:split], "-b", spec, *command[split:]]


# -- a module:Class target names its queue -------------------------------------------------


def test_every_command_takes_the_queue_from_a_worker_class(
    target: str, connector: BaseConnector
) -> None:
    """push, stats, dead list/show/requeue/purge and purge work with no QUEUE."""
    pushed = sergeant("push", "-b", target, "--kwargs", '{"x": 1}', "--count", "2")
    assert pushed.exit_code == 0, pushed.output
    assert connector.length("cli-jobs") == 2
    assert stats_row(target)["queue"] == "cli-jobs"

    connector.dead_letter_many("cli-jobs", connector.lease_many("cli-jobs", 2, "w", 60), "test")
    listed = sergeant("dead", "list", "-b", target, "--json")
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.output)
    assert len(rows) == 2
    shown = sergeant("dead", "show", "-b", target, rows[0]["item_id"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["item_id"] == rows[0]["item_id"]

    requeued = sergeant("dead", "requeue", "-b", target, "--limit", "1")
    assert "requeued 1 dead tasks of 'cli-jobs'" in requeued.output
    assert "purged 1 dead tasks" in sergeant("dead", "purge", "-b", target, "--yes").output
    assert "purged 1 tasks from 'cli-jobs'" in sergeant("purge", "-b", target, "--yes").output
    assert connector.length("cli-jobs") == connector.dead_count("cli-jobs") == 0


def test_a_queue_given_beside_a_worker_class_wins(target: str, connector: BaseConnector) -> None:
    """QUEUE on the command line overrides the class's own queue."""
    assert sergeant("push", "-b", target, "other", "--kwargs", "{}").exit_code == 0
    assert (connector.length("other"), connector.length("cli-jobs")) == (1, 0)
    assert stats_row(target, "other")["ready"] == 1
    connector.dead_letter_many("other", connector.lease_many("other", 1, "w", 60), "test")
    [row] = json.loads(sergeant("dead", "list", "-b", target, "other", "--json").output)
    shown = sergeant("dead", "show", "-b", target, "other", row["item_id"])
    assert json.loads(shown.output)["item_id"] == row["item_id"]


@pytest.mark.parametrize(
    "command",
    [
        ["stats"],
        ["push", "--kwargs", "{}"],
        ["purge", "--yes"],
        ["dead", "list"],
        ["dead", "requeue"],
        ["dead", "purge", "--yes"],
    ],
)
def test_a_url_without_a_queue_says_what_to_do(broker_url: str, command: list[str]) -> None:
    """Neither a QUEUE nor a worker class: one usage error naming both ways out."""
    result = sergeant(*_with_broker(command, broker_url))
    assert result.exit_code == 2, result.output
    assert "name the QUEUE" in result.output
    assert "module:Class" in result.output


def test_dead_show_with_a_url_needs_the_queue_and_the_id(broker_url: str) -> None:
    result = sergeant("dead", "show", "-b", broker_url, "N0001")
    assert result.exit_code == 2
    assert "name the QUEUE" in result.output
    assert "ITEM_ID" in sergeant("dead", "show", "-b", broker_url).output


# -- read-only commands never create a broker ------------------------------------------------


READ_ONLY = [["stats", "q"], ["dead", "list", "q"], ["dead", "show", "q", "1"]]


@pytest.mark.parametrize("command", READ_ONLY)
def test_a_missing_sqlite_file_is_an_error_and_stays_missing(
    tmp_path: Path, command: list[str]
) -> None:
    """The file and its directory are not created; the message shows the resolved path."""
    missing = tmp_path / "no" / "such" / "dir" / "x.sqlite3"
    result = sergeant(*_with_broker(command, f"sqlite:///{missing}"))
    assert result.exit_code != 0
    assert str(missing) in result.output
    assert "does not exist" in result.output
    assert tree(tmp_path) == []
    beside = tmp_path / "x.sqlite3"  # the directory exists, the file does not
    result = sergeant(*_with_broker(command, f"sqlite:///{beside}"))
    assert result.exit_code != 0
    assert str(beside) in result.output
    assert tree(tmp_path) == []


@pytest.mark.parametrize("command", READ_ONLY)
def test_a_worker_class_on_a_missing_sqlite_file_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    missing = tmp_path / "x.sqlite3"
    monkeypatch.setenv("SERGEANT_TEST_BROKER_URL", f"sqlite:///{missing}")
    result = sergeant(*_with_broker(command, TARGET))
    assert result.exit_code != 0
    assert str(missing) in result.output
    assert tree(tmp_path) == []


def test_a_sqlite_url_one_slash_short_is_refused_naming_the_path(tmp_path: Path) -> None:
    """sqlite://tmp/x reads 'tmp' as a host: refused, saying where it would have gone."""
    assert str(tmp_path).startswith("/")
    first, rest = str(tmp_path).lstrip("/").split("/", 1)
    url = f"sqlite://{first}/{rest}/x.sqlite3"  # the first directory lost as a "host"
    resolved = f"/{rest}/x.sqlite3"
    for command in [*READ_ONLY, ["push", "q", "--kwargs", "{}"]]:
        result = sergeant(*_with_broker(command, url))
        assert result.exit_code == 2, result.output
        assert "one slash short" in result.output
        assert resolved in result.output
        assert f"sqlite:///{first}/{rest}/x.sqlite3" in result.output
    assert not Path(f"/{rest.split('/')[0]}").exists()
    assert tree(tmp_path) == []


def test_push_creates_a_sqlite_file_but_never_a_directory(tmp_path: Path) -> None:
    missing_dir = tmp_path / "no" / "dir"
    refused = sergeant("push", "-b", f"sqlite:///{missing_dir}/x.sqlite3", "q", "--kwargs", "{}")
    assert refused.exit_code != 0
    assert str(missing_dir) in refused.output
    assert "does not exist" in refused.output
    assert tree(tmp_path) == []

    made = tmp_path / "x.sqlite3"
    assert sergeant("push", "-b", f"sqlite:///{made}", "q", "--kwargs", "{}").exit_code == 0
    assert made.is_file()
    assert stats_row(f"sqlite:///{made}", "q")["ready"] == 1


@pytest.mark.parametrize(
    ("spec", "meant"),
    [
        ("redis//127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("rediss//cache.example:6380/0", "rediss://cache.example:6380/0"),
        ("mongodb//127.0.0.1:27017/", "mongodb://127.0.0.1:27017/"),
        ("sqlite//tmp/b.sqlite3", "sqlite:///tmp/b.sqlite3"),
    ],
)
def test_a_url_missing_its_colon_is_named_as_such(spec: str, meant: str) -> None:
    result = sergeant("stats", "-b", spec, "q")
    assert result.exit_code == 2
    assert "looks like a broker URL missing its colon" in result.output
    assert meant in result.output
    assert "Cannot import" not in result.output


# -- ids are never cut --------------------------------------------------------------------


def test_dead_list_shows_full_ids_that_dead_show_accepts_at_80_columns(
    broker_url: str, connector: BaseConnector
) -> None:
    long_kwargs = {"url": "https://example.com/" + "a" * 200, "reason": "x" * 80}
    result = sergeant("push", "-b", broker_url, "q", "--kwargs", json.dumps(long_kwargs))
    assert result.exit_code == 0
    connector.dead_letter_many(
        "q", connector.lease_many("q", 1, "w", 60), "worker died", "killed by SIGKILL " * 10
    )
    [letter] = connector.dead_letters("q", 10)
    table = sergeant("dead", "list", "-b", broker_url, "q", env={"COLUMNS": "80"}).output
    assert max(len(line) for line in table.splitlines()) <= 80
    shown_ids = re.findall(r"^│ (\S+)", table, re.MULTILINE)
    assert shown_ids[0] == letter.item_id
    assert "…" not in shown_ids[0]
    shown = sergeant("dead", "show", "-b", broker_url, "q", shown_ids[0])
    assert shown.exit_code == 0, shown.output


def test_stats_shows_full_worker_and_task_ids_at_80_columns(
    broker_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The live workers table keeps whole ids too (other columns give way)."""
    import threading

    from tests.servers import wait_until
    from tests.workers import ops

    monkeypatch.setenv("SERGEANT_TEST_BROKER_URL", broker_url)
    monkeypatch.setenv("SERGEANT_TEST_QUEUE", "a-rather-long-queue-name-for-the-table")
    monkeypatch.setenv("SERGEANT_TEST_MAX_TASKS", "1")
    ops.RELEASE.clear()
    with ops.OpsWorker() as worker:
        worker.init_worker()
        held = worker.push_task({"hold": True})
        loop = threading.Thread(target=worker.work_loop)
        loop.start()
        try:
            queue = worker.config.name
            wait_until(
                lambda: (
                    [w["current_task_id"] for w in stats_row(broker_url, queue)["workers"]]
                    == [held]
                ),
                timeout=20,
                message="the worker's heartbeat with its current task",
            )
            [row] = stats_row(broker_url, queue)["workers"]
            table = sergeant("stats", "-b", broker_url, queue, env={"COLUMNS": "80"}).output
            assert max(len(line) for line in table.splitlines()) <= 80
            assert held in table
            assert str(row["id"]) in table
        finally:
            ops.RELEASE.set()
            loop.join(timeout=30)


def test_a_memory_broker_is_refused_as_it_lives_in_another_process() -> None:
    """A command would see an empty in-process broker of its own: refused, naming why."""
    result = CliRunner().invoke(main, ["stats", "-b", "memory://jobs", "q"])
    assert result.exit_code != 0
    assert "queues live inside one process" in result.output
