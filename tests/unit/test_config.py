"""Bad configuration fails at construction with a message naming the field and the fix."""

from __future__ import annotations

import typing

import pytest

from sergeant import config
from sergeant.connector import create
from sergeant.errors import ConfigError


def bad(value: object) -> typing.Any:
    """A deliberately ill-typed value, as a user's untyped code could pass."""
    return value


@pytest.mark.parametrize(
    ("build", "fragment"),
    [
        (
            lambda: config.Connector(type=bad("reds"), params={}),
            "Connector.type is 'reds'; use one of 'redis'",
        ),
        (lambda: config.Connector(params=bad([])), "Connector.params is []"),
        (
            lambda: config.Encoder(serializer=bad("yaml")),
            "Encoder.serializer is 'yaml'; use one of 'pickle'",
        ),
        (lambda: config.Encoder(compressor=bad("zip")), "Encoder.compressor is 'zip'"),
        (lambda: config.Timeouts(timeout=-1), "Timeouts.timeout is -1; use a number >= 0"),
        (lambda: config.Timeouts(grace_period=bad("10")), "Timeouts.grace_period is '10'"),
        (lambda: config.Starvation(time_with_no_tasks=0), "Starvation.time_with_no_tasks is 0"),
        (lambda: config.LoggingEvents(on_success=bad("yes")), "LoggingEvents.on_success is 'yes'"),
        (lambda: config.Logging(handlers=bad(["h"])), "Logging.handlers[0] is 'h'"),
        (lambda: config.WorkerConfig(name=""), "WorkerConfig.name is ''"),
        (
            lambda: config.WorkerConfig(name="w", tasks_per_transaction=0),
            "tasks_per_transaction is 0",
        ),
        (
            lambda: config.WorkerConfig(name="w", number_of_threads=bad(1.5)),
            "number_of_threads is 1.5",
        ),
        (lambda: config.WorkerConfig(name="w", max_retries=True), "max_retries is True"),
        (lambda: config.WorkerConfig(name="w", delivery=bad("exactly_once")), "'at_least_once'"),
        (lambda: config.WorkerConfig(name="w", timeouts=bad(5)), "WorkerConfig.timeouts is 5"),
        (
            lambda: config.WorkerConfig(name="w").replace(max_tasks_per_run=-3),
            "max_tasks_per_run is -3",
        ),
        (
            lambda: config.WorkerConfig(name="w", prefetch=bad("yes")),
            "prefetch is 'yes'; use None, True, False or a number of pulls from 0 to 64",
        ),
        (lambda: config.WorkerConfig(name="w", prefetch=65), "WorkerConfig.prefetch is 65"),
    ],
)
def test_bad_values_raise_config_error_naming_the_field(
    build: typing.Callable[[], object], fragment: str
) -> None:
    """Each bad value raises ConfigError whose message names field, value and remedy."""
    with pytest.raises(ConfigError) as info:
        build()
    assert fragment in str(info.value)
    assert isinstance(info.value, ValueError)


def test_unknown_connector_params_are_rejected() -> None:
    """A typo in connector params is an error, not silently ignored."""
    with pytest.raises(ConfigError, match="file_pat"):
        create("local", {"file_pat": "x"})
    with pytest.raises(ConfigError, match="nmae"):
        create("memory", {"nmae": "x"})
    with pytest.raises(ConfigError, match="'mysql'"):
        create("mysql", {})


def test_good_config_is_accepted() -> None:
    """A full, valid configuration builds without complaint."""
    cfg = config.WorkerConfig(
        name="w",
        connector=config.Connector(type="redis", params={"nodes": []}),
        max_tasks_per_run=10,
        tasks_per_transaction=100,
        encoder=config.Encoder(serializer="msgpack", compressor="zlib"),
        timeouts=config.Timeouts(timeout=1.5, grace_period=2),
        starvation=config.Starvation(time_with_no_tasks=5),
        delivery="at_most_once",
    )
    assert cfg.encoder.serializer == "msgpack"
