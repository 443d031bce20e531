"""Signed tasks on real brokers: workers with keys run only what their producers signed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from sergeant.broker import BAD_SIGNATURE
from sergeant.config import Connector
from sergeant.connector import create
from sergeant.connector.base import Connector as BaseConnector
from sergeant.encoder import Encoder
from sergeant.objects import Task
from tests.integration.test_cli_security import crafted_pickle
from tests.servers import RedisServer
from tests.workers.signed import KEYS_ENV, SignedWorker

PROJECT_ROOT = Path(__file__).resolve().parents[2]
KEY = "k" * 16 + "-the-current-key"
OLD_KEY = "o" * 16 + "-the-previous-key"
OTHER_KEY = "x" * 16 + "-nobody-s-key"


@pytest.fixture(params=["redis", "local"])
def broker_url(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """The session's private Redis (emptied) or a fresh SQLite file, named for the worker."""
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        server.flush()
        url = f"redis://127.0.0.1:{server.port}/0"
    else:
        url = f"sqlite:///{tmp_path}/broker.sqlite3"
    monkeypatch.setenv("SERGEANT_TEST_BROKER_URL", url)
    monkeypatch.setenv(KEYS_ENV, KEY)
    return url


@pytest.fixture
def connector(broker_url: str) -> typing.Iterator[BaseConnector]:
    """A connector on the same broker, to write raw bytes behind the worker's back."""
    config = Connector.from_url(broker_url)
    conn = create(config.type, config.params)
    yield conn
    conn.close()


def encoded(kwargs: dict[str, typing.Any], *keys: str) -> bytes:
    """A task's bytes as a producer with ``keys`` (none: unsigned) writes them."""
    return Encoder(signing_keys=[key.encode() for key in keys]).encode(Task(kwargs=kwargs))


def run_worker() -> SignedWorker:
    """A SignedWorker run until its queue has been empty for a second."""
    with SignedWorker() as worker:
        worker.init_worker()
        worker.work_loop()
    return worker


def sergeant(*args: str) -> subprocess.CompletedProcess[str]:
    """The ``sergeant`` command in a process of its own (the environment has the key)."""
    return subprocess.run(
        [sys.executable, "-m", "sergeant.cli", *args],
        cwd=PROJECT_ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.slow
def test_unsigned_and_forged_tasks_are_dead_lettered_undecoded_while_signed_ones_run(
    broker_url: str, connector: BaseConnector, tmp_path: Path
) -> None:
    """Unsigned, forged and tampered tasks go to the dead letters as 'bad signature'; a crafted
    pickle among them is never loaded; the signed tasks (pushed by worker or CLI) run."""
    marker = tmp_path / "pwned"
    producer = SignedWorker()
    producer.init_broker()
    producer.push_tasks([{"n": 1}, {"n": 2}])
    pushed = sergeant(
        "push", "-b", "tests.workers.signed:SignedWorker", "signed", "--kwargs", '{"n": 3}'
    )
    assert pushed.returncode == 0, pushed.stderr
    tampered = bytearray(encoded({"n": 4}, KEY))
    tampered[-3] ^= 1
    connector.push_many(
        "signed",
        [
            crafted_pickle(marker),
            encoded({"n": 5}),
            encoded({"n": 6}, OTHER_KEY),
            bytes(tampered),
        ],
    )
    worker = run_worker()
    producer.close()

    assert sorted(kwargs["n"] for kwargs in worker.ran) == [1, 2, 3]
    assert not marker.exists()
    dead = connector.dead_letters("signed", 10)
    assert [letter.reason for letter in dead] == [BAD_SIGNATURE] * 4
    assert sorted(letter.error for letter in dead) == [
        "signed with a key this worker does not have",
        "the signature does not match the task's bytes",
        "the task is not signed",
        "the task is not signed",
    ]

    listed = sergeant("dead", "list", "-b", "tests.workers.signed:SignedWorker", "--json", "signed")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [row["kwargs"] for row in rows] == [None] * 4
    assert all("bad signature" in row["payload"] for row in rows)
    assert not marker.exists()


@pytest.mark.slow
def test_operator_reads_signed_tasks_with_the_key_and_says_when_it_has_none(
    broker_url: str, connector: BaseConnector
) -> None:
    """dead list shows a signed task's kwargs with the worker's key, 'key unknown' by URL."""
    connector.push_many("signed", [encoded({"n": 7}, KEY)])
    [delivery] = connector.lease_many("signed", 1, "test", 60)
    connector.dead_letter_many("signed", [delivery], "worker died", "SIGKILL")

    by_class = sergeant(
        "dead", "list", "-b", "tests.workers.signed:SignedWorker", "signed", "--json"
    )
    by_url = sergeant("dead", "list", "-b", broker_url, "signed", "--json")
    assert by_class.returncode == by_url.returncode == 0, by_class.stderr + by_url.stderr
    [row] = json.loads(by_class.stdout)
    assert row["kwargs"] == {"n": 7}
    assert row["payload"].endswith("signature valid")
    [row] = json.loads(by_url.stdout)
    assert row["kwargs"] is None
    assert "signed, key unknown" in row["payload"]


@pytest.mark.slow
def test_key_rotation_old_key_verifies_new_key_signs(
    broker_url: str, connector: BaseConnector, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker with [new, old] runs tasks signed with the old key and re-pushes with the new."""
    monkeypatch.setenv(KEYS_ENV, f"{KEY}\n{OLD_KEY}")
    connector.push_many("signed", [encoded({"n": 1, "retry": True}, OLD_KEY)])
    worker = run_worker()
    assert worker.ran == [{"n": 1, "retry": True}] * 2  # ran, retried, re-pushed, ran again
    assert connector.dead_count("signed") == 0

    with SignedWorker() as producer:
        producer.init_broker()
        producer.push_task({"n": 2})
    [delivery] = connector.lease_many("signed", 1, "test", 60)
    assert Encoder(signing_keys=[KEY.encode()]).decode(delivery.payload).kwargs == {"n": 2}
    with pytest.raises(Exception, match="bad signature"):
        Encoder(signing_keys=[OLD_KEY.encode()]).decode(delivery.payload)
