"""Task kwargs are checked when pushed, not when a worker meets them.

A task's kwargs is a ``dict`` with ``str`` keys (argument names), under every
serializer. Anything else is refused by
``push_task``/``push_tasks``/``retry``/``requeue`` and by ``sergeant push``,
naming the argument (and the item of a batch); nothing of the batch is pushed.
A value the serializer cannot encode is named with the serializer in use.
"""

from __future__ import annotations

import threading
import typing
from pathlib import Path

import pytest
from click.testing import CliRunner

from sergeant import config, worker
from sergeant.cli import main
from sergeant.errors import EncodingError
from tests.servers import RedisServer


class Producer(worker.Worker):
    """A worker on the broker given to it, with the serializer given to it."""

    def __init__(self, connector: config.Connector, serializer: str = "pickle") -> None:
        self._connector, self._serializer = connector, serializer
        super().__init__()

    def generate_config(self) -> config.WorkerConfig:
        return config.WorkerConfig(
            name="q",
            connector=self._connector,
            encoder=config.Encoder(serializer=self._serializer),  # type: ignore[arg-type]
            block_seconds=0.05,
        )


@pytest.fixture(params=["redis", "local"])
def connector(request: pytest.FixtureRequest, tmp_path: Path) -> config.Connector:
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        server.flush()
        return config.Connector.from_url(server.url)
    return config.Connector(params={"file_path": str(tmp_path / "broker.sqlite3")})


@pytest.fixture
def producer(connector: config.Connector) -> typing.Iterator[Producer]:
    with Producer(connector) as made:
        made.init_broker()
        yield made


def test_push_task_refuses_a_list_naming_the_argument(producer: Producer) -> None:
    with pytest.raises(TypeError) as caught:
        producer.push_task(["a", "b"])  # type: ignore[arg-type]
    message = str(caught.value)
    assert message.startswith("push_task(kwargs) is a list")
    assert "['a', 'b']" in message
    assert "dict" in message
    assert producer.number_of_enqueued_tasks() == 0


def test_push_tasks_names_the_bad_item_and_pushes_none(producer: Producer) -> None:
    batch: list[typing.Any] = [{"a": 1}, {"b": 2}, ("x", 1), {"c": 3}]
    with pytest.raises(TypeError, match=r"^push_tasks\(kwargs_list\): item 2 is a tuple"):
        producer.push_tasks(batch)
    with pytest.raises(TypeError, match=r"push_tasks\(kwargs_list\): item 0 is a str"):
        producer.push_tasks(["abc"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match=r"push_tasks\(kwargs_list\) is a dict"):
        producer.push_tasks({"a": 1})  # type: ignore[dict-item]
    assert producer.number_of_enqueued_tasks() == 0


@pytest.mark.parametrize("serializer", ["pickle", "msgpack", "json"])
def test_keys_must_be_str_under_every_serializer(
    connector: config.Connector, serializer: str
) -> None:
    with Producer(connector, serializer) as made:
        made.init_broker()
        with pytest.raises(
            TypeError,
            match=rf"^push_tasks\(kwargs_list\): item 1 has the key \(1, 2\) \(tuple\); kwargs "
            rf"keys must be str \(argument names; the '{serializer}' serializer is in use\)",
        ):
            made.push_tasks([{"a": 1}, {(1, 2): "pair"}])  # type: ignore[dict-item]
        with pytest.raises(TypeError, match=r"^push_task\(kwargs\) has the key 7 \(int\)"):
            made.push_task({7: "seven"})  # type: ignore[dict-item]
        assert made.number_of_enqueued_tasks() == 0


def test_retry_and_requeue_check_the_task_kwargs(producer: Producer) -> None:
    producer.push_task({"a": 1})
    [task] = producer.get_next_tasks(1)
    task.kwargs = [1, 2]  # type: ignore[assignment]
    with pytest.raises(TypeError, match=r"^retry\(task\): task.kwargs is a list"):
        producer.retry(task)
    with pytest.raises(TypeError, match=r"^requeue\(task\): task.kwargs is a list"):
        producer.requeue(task)
    assert producer.number_of_enqueued_tasks() == 0


def test_good_kwargs_still_round_trip(producer: Producer) -> None:
    ids = producer.push_tasks([{"n": i} for i in range(10)] + [{}])
    assert len(ids) == 11
    tasks = producer.get_next_tasks(11)
    assert [t.kwargs for t in tasks] == [{"n": i} for i in range(10)] + [{}]


def test_cli_push_refuses_kwargs_that_are_not_an_object(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/b.sqlite3"
    for text in ('["a", "b"]', "7", '"x"', "null"):
        result = CliRunner().invoke(main, ["push", "-b", url, "q", "--kwargs", text])
        assert result.exit_code == 2, result.output
        assert "--kwargs" in result.output
        assert "JSON object" in result.output
    assert list(tmp_path.iterdir()) == []


# -- values the serializer cannot encode ----------------------------------------------------


def test_a_lock_under_pickle_names_pickle_the_value_and_what_fits(producer: Producer) -> None:
    with pytest.raises(EncodingError) as caught:
        producer.push_task({"x": threading.Lock()})
    message = str(caught.value)
    assert "choose the 'pickle' serializer" not in message
    assert "'pickle'" in message
    assert "kwargs['x']" in message
    assert "lock" in message
    assert producer.number_of_enqueued_tasks() == 0


def test_a_nested_value_is_named_by_its_path(producer: Producer) -> None:
    with pytest.raises(EncodingError, match=r"item 1: kwargs\['a'\]\[1\]\['f'\]"):
        producer.push_tasks([{"ok": 1}, {"a": [0, {"f": lambda: None}]}])


@pytest.mark.parametrize(
    ("serializer", "value", "suggestion"),
    [
        ("msgpack", {1, 2}, "'pickle'"),
        ("json", b"raw", "'msgpack'"),
    ],
)
def test_other_serializers_say_what_fits(
    connector: config.Connector, serializer: str, value: object, suggestion: str
) -> None:
    with Producer(connector, serializer) as made:
        made.init_broker()
        with pytest.raises(EncodingError) as caught:
            made.push_task({"v": value})
    message = str(caught.value)
    assert f"with the {serializer!r} serializer" in message
    assert "kwargs['v']" in message
    assert suggestion in message


def test_a_dict_subclass_is_pushed_as_a_plain_dict(producer: Producer) -> None:
    """Workers decode plain dicts only, so an OrderedDict or defaultdict is copied into one."""
    import collections

    producer.push_tasks([collections.OrderedDict(a=1), collections.defaultdict(int, b=2)])
    tasks = producer.get_next_tasks(2)
    assert [(type(t.kwargs), t.kwargs) for t in tasks] == [(dict, {"a": 1}), (dict, {"b": 2})]
