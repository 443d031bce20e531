"""Resolving the broker a command talks to: a URL, or a worker class's own config."""

from __future__ import annotations

import os
import sys
import types

import click

from sergeant.broker import Broker
from sergeant.config import Connector, Encoder
from sergeant.connector import create
from sergeant.encoder import Encoder as TaskEncoder
from sergeant.errors import SergeantError
from sergeant.slave import load_worker_class
from sergeant.worker import Worker

__all__ = ["BROKER_HELP", "Target", "broker_option", "resolve"]

BROKER_HELP = (
    "The broker: a URL (redis://host:6379/0, mongodb://host/, sqlite:///path.sqlite3) or a "
    "worker class as module:Class, whose generate_config() names the broker and queue. "
    "Defaults to $SERGEANT_BROKER."
)

broker_option = click.option(
    "-b", "--broker", "broker", envvar="SERGEANT_BROKER", required=True, help=BROKER_HELP
)


class Target:
    """A broker to operate on, and the queue a worker class names (if one was given)."""

    def __init__(self, broker: Broker, default_queue: str | None) -> None:
        self.broker = broker
        self.default_queue = default_queue

    def __enter__(self) -> Target:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        """Close the connector; a broker error becomes one clear CLI error, not a traceback."""
        self.broker.connector.close()
        if isinstance(exc, SergeantError):
            raise click.ClickException(str(exc)) from exc

    def queues(self, given: tuple[str, ...]) -> list[str]:
        """The queues named on the command line, else the worker class's own queue."""
        if given:
            return list(given)
        if self.default_queue is None:
            raise click.UsageError("name at least one QUEUE (a URL does not say which queue)")
        return [self.default_queue]


def _worker_class(spec: str) -> type[Worker]:
    module_name, _, class_name = spec.partition(":")
    if os.getcwd() not in sys.path:  # like `python -m`, find modules in the current directory
        sys.path.insert(0, os.getcwd())
    return load_worker_class(module_name, class_name)


def resolve(spec: str, serializer: str = "pickle", compressor: str | None = None) -> Target:
    """The broker behind ``spec`` (a URL or ``module:Class``).

    Raises:
        click.BadParameter: the spec names nothing usable; the message says why.
    """
    try:
        if "://" in spec:
            connector_config = Connector.from_url(spec)
            encoder_config = Encoder(serializer=serializer, compressor=compressor)  # type: ignore[arg-type]
            queue = None
        elif ":" in spec:
            config = _worker_class(spec)().config
            connector_config, encoder_config, queue = config.connector, config.encoder, config.name
        else:
            raise click.BadParameter(f"{spec!r} is neither a broker URL nor module:Class")
        connector = create(connector_config.type, connector_config.params)
    except SergeantError as exc:
        raise click.BadParameter(str(exc)) from exc
    encoder = TaskEncoder(
        encoder_config.serializer, encoder_config.compressor, encoder_config.signing_keys()
    )
    return Target(Broker(connector, encoder), queue)
