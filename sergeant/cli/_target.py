"""Resolving the broker a command talks to: a URL, or a worker class's own config."""

from __future__ import annotations

import os
import re
import sys
import types

import click

from sergeant.broker import Broker
from sergeant.config import Connector, Encoder
from sergeant.errors import SergeantError
from sergeant.worker import Worker
from sergeant.worker.loader import load_worker_class

__all__ = ["BROKER_HELP", "Target", "broker_option", "check_local_file", "resolve"]

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
        self.broker.close()
        if isinstance(exc, SergeantError):
            raise click.ClickException(str(exc)) from exc

    def queues(self, given: tuple[str, ...]) -> list[str]:
        """The queues named on the command line, else the worker class's own queue."""
        return list(given) if given else [self.queue(None)]

    def queue(self, given: str | None) -> str:
        """The queue named on the command line, else the worker class's own queue.

        Raises:
            click.UsageError: neither names one; the message says how to name it.
        """
        if given:
            return given
        if self.default_queue is None:
            raise click.UsageError(
                "name the QUEUE: a broker URL does not say which queue (or give the broker "
                "as -b module:Class, whose config names its queue)"
            )
        return self.default_queue


def _worker_class(spec: str) -> type[Worker]:
    module_name, _, class_name = spec.partition(":")
    if os.getcwd() not in sys.path:  # like `python -m`, find modules in the current directory
        sys.path.insert(0, os.getcwd())
    return load_worker_class(module_name, class_name)


#: URL schemes a broker spec may start with (``Connector.from_url``).
_SCHEMES = (
    "redis",
    "rediss",
    "redis+cluster",
    "rediss+cluster",
    "mongodb",
    "mongodb+srv",
    "sqlite",
)
_COLONLESS = re.compile(rf"^({'|'.join(map(re.escape, _SCHEMES))})//(.*)$", re.IGNORECASE)


def _colonless_url(spec: str) -> str | None:
    """The URL meant by a spec such as ``redis//host:6379/0``, or None."""
    match = _COLONLESS.match(spec)
    if match is None:
        return None
    scheme, rest = match.groups()
    if scheme.lower() == "sqlite":
        return f"sqlite:///{rest.lstrip('/')}"
    return f"{scheme}://{rest}"


def check_local_file(file_path: str, spec: str, creates: bool) -> None:
    """Refuse a SQLite broker that a command would create by mistake.

    A command that only reads or acts on what is there (``creates=False``) needs
    the file; ``push`` (``creates=True``) may create the file, never its directory.

    Raises:
        click.ClickException: the file (or its directory) does not exist; the
            message shows the path ``spec`` resolved to.
    """
    path = os.path.abspath(file_path)
    if os.path.isfile(path):
        return
    if os.path.exists(path):
        raise click.ClickException(
            f"the SQLite broker {path!r} (from {spec!r}) is not a file; check the path"
        )
    directory = os.path.dirname(path)
    if not creates:
        raise click.ClickException(
            f"the SQLite broker file {path!r} (from {spec!r}) does not exist; this command "
            "creates none: check the path (sqlite:// then an absolute path, as in "
            "sqlite:///var/lib/app/broker.sqlite3), or push a task to create it"
        )
    if not os.path.isdir(directory):
        raise click.ClickException(
            f"the directory {directory!r} of the SQLite broker {path!r} (from {spec!r}) does "
            "not exist; push creates the file but never a directory: check the path, or "
            f"create the directory first (mkdir -p {directory})"
        )


def resolve(
    spec: str, serializer: str = "pickle", compressor: str | None = None, creates: bool = False
) -> Target:
    """The broker behind ``spec`` (a URL or ``module:Class``).

    ``creates``: the command may create a missing SQLite file (``push``); the
    others refuse one (see :func:`check_local_file`).

    Raises:
        click.BadParameter: the spec names nothing usable; the message says why.
        click.ClickException: a SQLite broker that is not there (see above).
    """
    meant = _colonless_url(spec)
    if meant is not None:
        raise click.BadParameter(
            f"{spec!r} looks like a broker URL missing its colon; write {meant}"
        )
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
        if connector_config.type == "memory":
            raise click.BadParameter(
                f"{spec!r} uses the 'memory' broker, whose queues live inside one "
                "process: a command cannot see them; use a 'local', 'redis' or 'mongo' broker"
            )
        if connector_config.type == "local" and "file_path" in connector_config.params:
            check_local_file(os.fspath(connector_config.params["file_path"]), spec, creates)
        broker = Broker.from_config(connector_config, encoder_config)
    except SergeantError as exc:
        raise click.BadParameter(str(exc)) from exc
    return Target(broker, queue)
