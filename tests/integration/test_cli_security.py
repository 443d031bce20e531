"""The operator commands never run a task's bytes: a crafted pickle is described, not loaded."""

from __future__ import annotations

import datetime
import json
import os
import pickle
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from sergeant.config import Connector
from sergeant.connector import create
from sergeant.connector.base import Connector as BaseConnector
from tests.servers import RedisServer

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class Marker:
    """Pickles into a call of ``os.system`` that writes a marker file when loaded."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[typing.Any, ...]:
        return (os.system, (f"touch {self.path}",))


def crafted_pickle(marker: Path, task_id: str = "evil") -> bytes:
    """A task envelope whose kwargs run ``touch marker`` when unpickled."""
    return pickle.dumps([task_id, {"x": Marker(marker)}, None, 0.0, 0], protocol=5)


@pytest.fixture(params=["redis", "local"])
def broker_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The session's private Redis (emptied) or a fresh SQLite file."""
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        server.flush()
        return f"redis://127.0.0.1:{server.port}/0"
    return f"sqlite:///{tmp_path}/broker.sqlite3"


@pytest.fixture
def connector(broker_url: str) -> typing.Iterator[BaseConnector]:
    """A connector on the same broker, to write raw bytes behind the CLI's back."""
    config = Connector.from_url(broker_url)
    conn = create(config.type, config.params)
    yield conn
    conn.close()


def sergeant(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The ``sergeant`` command in a process of its own."""
    return subprocess.run(
        [sys.executable, "-m", "sergeant.cli", *args],
        cwd=PROJECT_ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def bury(connector: BaseConnector, queue: str, payloads: list[bytes]) -> None:
    """Put raw payloads straight into the dead letters of ``queue``."""
    connector.push_many(queue, payloads)
    deliveries = connector.lease_many(queue, len(payloads), "test", 60)
    connector.dead_letter_many(queue, deliveries, "worker died", "SIGKILL")


@pytest.mark.slow
def test_crafted_pickle_is_listed_shown_and_counted_without_running(
    broker_url: str, connector: BaseConnector, tmp_path: Path
) -> None:
    """dead list (table and --json), dead show and stats describe the pickle, never load it."""
    marker = tmp_path / "pwned"
    connector.push_many("jobs", [crafted_pickle(marker, "queued")])
    bury(connector, "jobs", [crafted_pickle(marker, "dead")])

    table = sergeant("dead", "list", "-b", broker_url, "jobs", env={"COLUMNS": "250"})
    listed = sergeant("dead", "list", "-b", broker_url, "jobs", "--json")
    assert table.returncode == listed.returncode == 0, table.stderr + listed.stderr
    assert "refused global posix.system" in table.stdout
    [row] = json.loads(listed.stdout)
    assert row["kwargs"] is None
    assert row["payload"].startswith("<pickle, ")
    assert row["payload"].endswith("bytes, refused global posix.system>")
    shown = sergeant("dead", "show", "-b", broker_url, "jobs", row["item_id"])
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["payload"] == row["payload"]
    stats = sergeant("stats", "-b", broker_url, "jobs", "--json")
    assert stats.returncode == 0, stats.stderr
    [counts] = json.loads(stats.stdout)["queues"]
    assert (counts["ready"], counts["dead"]) == (1, 1)
    assert not marker.exists()


@pytest.mark.slow
def test_dead_json_kwargs_is_an_object(broker_url: str, connector: BaseConnector) -> None:
    """--json gives kwargs as an object; plain pickled values are read, others become reprs."""
    kwargs = {
        "n": 1,
        "names": ["a", "b"],
        "when": datetime.datetime(2026, 1, 2, 3, 4, 5),
        "tags": {"x"},
    }
    bury(connector, "jobs", [pickle.dumps(["t1", kwargs, "trace", 1.5, 2], protocol=5)])
    result = sergeant("dead", "list", "-b", broker_url, "jobs", "--json")
    assert result.returncode == 0, result.stderr
    [row] = json.loads(result.stdout)
    assert row["kwargs"] == {
        "n": 1,
        "names": ["a", "b"],
        "when": "datetime.datetime(2026, 1, 2, 3, 4, 5)",
        "tags": "{'x'}",
    }
    assert row["task_id"] == "t1"
    assert row["payload"].startswith("pickle, ")
