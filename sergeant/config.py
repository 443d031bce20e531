"""Worker configuration: the Sergeant 0.27 frozen dataclasses, validated at construction.

Every class keeps the 0.27 name, fields and defaults. A wrong value raises
``sergeant.errors.ConfigError`` naming the field, the value and what is accepted.
New fields carry new capabilities only (delivery guarantee, lease length, block bound).
"""

from __future__ import annotations

import dataclasses
import logging as std_logging
import os
import tempfile
import typing

# Re-exported: the key bound was a name of this module.
from sergeant._config_checks import MIN_SIGNING_KEY_BYTES as MIN_SIGNING_KEY_BYTES
from sergeant._config_checks import (
    check_choice,
    check_number,
    check_type,
    fail,
    key_bytes,
)
from sergeant._config_flow import RateLimit as RateLimit
from sergeant._config_flow import Schedule as Schedule
from sergeant._config_flow import check_flow
from sergeant._config_url import parse_url
from sergeant.errors import ConfigError

__all__ = [
    "COMPRESSORS",
    "DELIVERY_MODES",
    "SERIALIZERS",
    "Connector",
    "Encoder",
    "Logging",
    "LoggingEvents",
    "RateLimit",
    "Schedule",
    "Starvation",
    "Timeouts",
    "WorkerConfig",
]

#: Accepted ``Encoder.serializer`` values.
SERIALIZERS = ("pickle", "msgpack", "json")
#: Accepted ``Encoder.compressor`` values (``None`` means no compression).
COMPRESSORS = ("bzip2", "gzip", "lzma", "zlib", "dummy")
#: Accepted ``WorkerConfig.delivery`` values.
DELIVERY_MODES = ("at_least_once", "at_most_once")
#: Accepted ``Connector.type`` values.
CONNECTOR_TYPES = ("redis", "mongo", "local", "memory")

#: Seconds a leased task stays owned by its worker without a renewal.
DEFAULT_LEASE_SECONDS = 60.0
#: Deliveries after which a task that keeps killing workers is dead-lettered.
DEFAULT_MAX_DELIVERIES = 5
#: Seconds an idle worker waits on the broker for a task before looping again.
DEFAULT_BLOCK_SECONDS = 1.0
#: Most pulls ``WorkerConfig.prefetch`` may keep in flight.
MAX_PREFETCH = 64


def default_local_file_path() -> str:
    """The SQLite file used when no connector is configured (shared by every worker)."""
    return os.path.join(tempfile.gettempdir(), "sergeant_default_db.sqlite3")


@dataclasses.dataclass(frozen=True)
class LoggingEvents:
    """Which task events the worker logs (0.27); the hooks are called either way.

    Attributes:
        on_success: log ``task has finished successfully`` (INFO) when ``work`` returned.
        on_failure: log ``task has failed: <exception>`` (ERROR) when ``work`` raised.
        on_timeout: log ``task has timed out`` (ERROR) when ``work`` ran past
            ``Timeouts.timeout``.
        on_retry: log ``task has retried`` (INFO) after ``retry()``.
        on_max_retries: log ``task has reached max retries`` (ERROR) when ``retry()``
            was refused.
        on_requeue: log ``task has requeued`` (INFO) after ``requeue()``.
        on_starvation: log ``worker is starving`` (WARNING) each time ``on_starvation``
            is called.
        on_stop: log ``worker was stopped by a task`` (INFO) when a task called ``stop()``.
        on_cancel: log ``task was cancelled`` (INFO) when ``Worker.cancel`` stopped a task.
    """

    on_success: bool = False
    on_failure: bool = True
    on_timeout: bool = True
    on_retry: bool = True
    on_max_retries: bool = True
    on_requeue: bool = True
    on_starvation: bool = True
    on_stop: bool = True
    on_cancel: bool = True

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            check_type(
                f"LoggingEvents.{field.name}", getattr(self, field.name), bool, "True or False"
            )


@dataclasses.dataclass(frozen=True)
class Logging:
    """How the worker logs (0.27).

    Attributes:
        level: the worker logger's level, a ``logging`` constant such as
            ``logging.INFO`` (not a string).
        log_to_stdout: add a stdout handler with the 0.27 line format.
        events: which task events are logged.
        handlers: handlers added to the worker's logger, such as the logstash handlers.
        json: (new) write the stdout handler's lines as JSON objects (see
            ``sergeant.logging.JsonFormatter``), each with its ``event`` name.
    """

    level: int = std_logging.ERROR
    log_to_stdout: bool = False
    events: LoggingEvents = dataclasses.field(default_factory=LoggingEvents)
    handlers: list[std_logging.Handler] = dataclasses.field(default_factory=list)
    json: bool = False

    def __post_init__(self) -> None:
        check_number("Logging.level", self.level, 0, integer=True)
        check_type("Logging.log_to_stdout", self.log_to_stdout, bool, "True or False")
        check_type("Logging.json", self.json, bool, "True or False")
        check_type("Logging.events", self.events, LoggingEvents, "a LoggingEvents()")
        check_type("Logging.handlers", self.handlers, list, "a list of logging.Handler")
        for index, handler in enumerate(self.handlers):
            check_type(
                f"Logging.handlers[{index}]", handler, std_logging.Handler, "a logging.Handler"
            )


#: A signing key, or several (the first signs, every one verifies).
SigningKeys = str | bytes | list[str | bytes] | tuple[str | bytes, ...]


@dataclasses.dataclass(frozen=True)
class Encoder:
    """How tasks are turned into bytes (0.27): a serializer, then an optional compressor.

    Signing (new; give at most one of the three ``signing_key*`` fields): producers
    add an HMAC-SHA256 of each task's bytes, and workers refuse, without decoding it,
    any task not signed by one of their keys (it is dead-lettered as ``'bad
    signature'``). Several keys rotate: the first signs, any of them verifies.

    Attributes:
        compressor: the compression applied after serializing (None = none;
            ``'dummy'`` passes the bytes through).
        serializer: how kwargs become bytes; producers and workers of a queue must
            agree. ``'pickle'`` (0.27's default) only for a broker nobody else can
            write to.
        signing_key: the key itself (str or bytes, at least 16 bytes), or a list of
            keys. Never shown in ``repr`` nor logged.
        signing_key_env: the name of an environment variable holding the key(s),
            separated by whitespace.
        signing_key_file: the path of a file holding the key(s), one per line.
    """

    compressor: typing.Literal["bzip2", "gzip", "lzma", "zlib", "dummy"] | None = None
    serializer: typing.Literal["pickle", "msgpack", "json"] = "pickle"
    signing_key: SigningKeys | None = dataclasses.field(default=None, repr=False)
    signing_key_env: str | None = None
    signing_key_file: str | None = None

    def __post_init__(self) -> None:
        check_choice("Encoder.serializer", self.serializer, SERIALIZERS)
        check_choice("Encoder.compressor", self.compressor, (None, *COMPRESSORS))
        given = [
            name
            for name in ("signing_key", "signing_key_env", "signing_key_file")
            if getattr(self, name) is not None
        ]
        if len(given) > 1:
            raise ConfigError(
                f"Encoder has both {given[0]} and {given[1]}; give the signing key one way"
            )
        self.signing_keys()  # a missing variable or file, or a short key: an error now

    def signing_keys(self) -> list[bytes]:
        """The signing keys, newest (the one that signs) first; empty when unsigned.

        Raises:
            ConfigError: the variable or file is missing or empty, or a key is too short.
        """
        if self.signing_key_env is not None:
            source = f"Encoder.signing_key_env ({self.signing_key_env!r})"
            text = os.environ.get(self.signing_key_env)
            if text is None:
                raise ConfigError(f"{source} is not set in the environment; export the key")
            keys: list[str | bytes] = list(text.split())
        elif self.signing_key_file is not None:
            source = f"Encoder.signing_key_file ({self.signing_key_file!r})"
            try:
                with open(self.signing_key_file, "rb") as file:
                    keys = list(file.read().split())
            except OSError as exc:
                raise ConfigError(f"{source} cannot be read: {exc.strerror}") from exc
        elif self.signing_key is not None:
            source = "Encoder.signing_key"
            given = self.signing_key
            keys = [given] if isinstance(given, (str, bytes)) else list(given)
        else:
            return []
        return key_bytes(source, keys)


@dataclasses.dataclass(frozen=True)
class Connector:
    """Which broker to use (0.27).

    ``params`` by type:

    * ``local``: ``{'file_path': '/path/to/file.sqlite3'}``
    * ``redis``: ``{'nodes': [{'host': ..., 'port': ..., 'password': ..., 'database': ...}, ...]}``,
      ``{'url': 'redis://...'}`` (or ``rediss://``, ``redis+cluster://``) or
      ``{'urls': ['redis://...', ...]}``; see ``docs/scaling.md``
    * ``mongo``: ``{'nodes': [{'host': ..., 'port': ..., 'replica_set': ...}, ...]}``
      or ``{'url': 'mongodb://...'}``
    * ``memory``: ``{}`` or ``{'name': 'x'}``: queues in this process's memory, shared
      by every connector of that name (default ``'default'``); for tests and
      one-process use only, not across processes (see ``docs/howto/brokers.md``)

    Attributes:
        params: the connector's parameters, by ``type`` (above); checked when the
            broker is created.
        type: the broker: ``'local'`` (an SQLite file), ``'redis'``, ``'mongo'`` or
            ``'memory'`` (in this process, for tests).
    """

    params: dict[str, typing.Any]
    type: typing.Literal["redis", "mongo", "local", "memory"] = "local"

    def __post_init__(self) -> None:
        check_choice("Connector.type", self.type, CONNECTOR_TYPES)
        check_type("Connector.params", self.params, dict, "a dict of connector parameters")

    @classmethod
    def from_url(cls, url: str) -> Connector:
        """The connector a URL names.

        Accepted: ``redis://[user:password@]host[:port][/database]``, ``rediss://``
        (TLS, with optional ``?ssl_ca_certs=...&ssl_certfile=...&ssl_keyfile=...``),
        ``redis+cluster://host:port,host:port,...`` (and ``rediss+cluster://``) for a
        Redis Cluster, ``?shards=N`` to spread each queue over N of its slots (these
        three are checked by the Redis connector),
        ``mongodb://...`` (any MongoDB URI, passed to pymongo as is),
        ``sqlite:///absolute/path.sqlite3`` and ``memory://name`` (the in-process
        broker of that name; ``memory://`` is ``'default'``).

        Raises:
            ConfigError: the URL's scheme or shape is not one of these.
        """
        kind, params = parse_url(url)
        return cls(type=kind, params=params)


@dataclasses.dataclass(frozen=True)
class Timeouts:
    """Task time limits (0.27), in seconds.

    Attributes:
        timeout: seconds after which a running task gets ``WorkerTimedout`` raised
            inside it (0 = no limit).
        grace_period: seconds after the timeout before a task still running has its
            worker process killed from outside and replaced.
    """

    timeout: float = 0.0
    grace_period: float = 10.0

    def __post_init__(self) -> None:
        check_number("Timeouts.timeout", self.timeout, 0)
        check_number("Timeouts.grace_period", self.grace_period, 0)


@dataclasses.dataclass(frozen=True)
class Starvation:
    """Call ``on_starvation`` after this many seconds without a task (0.27).

    Attributes:
        time_with_no_tasks: seconds without a task before ``on_starvation`` is called.
    """

    time_with_no_tasks: int

    def __post_init__(self) -> None:
        check_number("Starvation.time_with_no_tasks", self.time_with_no_tasks, 1)


@dataclasses.dataclass(frozen=True)
class WorkerConfig:
    """Everything a worker needs (0.27 fields first, then Sergeant 1.x additions).

    Attributes:
        name: the worker's queue name.
        connector: the broker; defaults to a SQLite file in the temp directory.
        max_tasks_per_run: tasks after which the worker process ends and is
            respawned by the supervisor (0 = forever).
        max_retries: ``retry()`` calls allowed per task (0 = unlimited).
        tasks_per_transaction: tasks pulled from the broker in one round trip.
        number_of_threads: 1 runs tasks serially; more runs them in threads.
        encoder: serializer and compressor.
        timeouts: task time limits.
        logging: what and where to log.
        starvation: call ``on_starvation`` after this long without tasks.
        delivery: ``'at_least_once'`` (default): pulled tasks are leased and only
            forgotten once their outcome is settled, so a dead worker's tasks run
            again. ``'at_most_once'``: 0.27's pop-and-forget, fastest, may lose tasks.
        lease_seconds: how long a pulled task stays owned without renewal; a live
            worker renews its leases well before this runs out.
        max_deliveries: deliveries after which a task that keeps killing its worker
            is dead-lettered (0 = never).
        block_seconds: how long an idle worker waits on the broker for a task.
        result_ttl_seconds: keep each task's outcome (the value ``work`` returned,
            or its failure) this long under the task id, for ``get_result``
            (0 = keep nothing).
        prefetch: how many pulls to keep in flight ahead of the running batch
            (``True`` is 1, at most 64). None (the default) is, where the broker
            can overlap a pull with the running batch (Redis: one server, several, a
            cluster): 1 when ``tasks_per_transaction`` > 1, 3 for one-task pulls
            at-least-once; else 0.
        schedules: tasks pushed on cron lines or intervals, each tick once (``Schedule``).
        rate_limit: task starts per interval across all workers of the queue.
        group_concurrency: most tasks of one group (``push_task(group_key=...)``)
            leased at once across all workers (0 = no bound); groups go round-robin.
        group_rate_limit: task starts per interval of each group.
    """

    name: str
    connector: Connector = dataclasses.field(
        default_factory=lambda: Connector(
            type="local", params={"file_path": default_local_file_path()}
        )
    )
    max_tasks_per_run: int = 0
    max_retries: int = 0
    tasks_per_transaction: int = 1
    number_of_threads: int = 1
    encoder: Encoder = dataclasses.field(default_factory=Encoder)
    timeouts: Timeouts = dataclasses.field(default_factory=Timeouts)
    logging: Logging = dataclasses.field(default_factory=Logging)
    starvation: Starvation | None = None
    delivery: typing.Literal["at_least_once", "at_most_once"] = "at_least_once"
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    max_deliveries: int = DEFAULT_MAX_DELIVERIES
    block_seconds: float = DEFAULT_BLOCK_SECONDS
    result_ttl_seconds: float = 0.0
    prefetch: bool | int | None = None
    schedules: list[Schedule] = dataclasses.field(default_factory=list)
    rate_limit: RateLimit | None = None
    group_concurrency: int = 0
    group_rate_limit: RateLimit | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            fail("WorkerConfig.name", self.name, "use a non-empty string (the queue name)")
        check_type("WorkerConfig.connector", self.connector, Connector, "a Connector(...)")
        check_number("WorkerConfig.max_tasks_per_run", self.max_tasks_per_run, 0, integer=True)
        check_number("WorkerConfig.max_retries", self.max_retries, 0, integer=True)
        check_number(
            "WorkerConfig.tasks_per_transaction", self.tasks_per_transaction, 1, integer=True
        )
        check_number("WorkerConfig.number_of_threads", self.number_of_threads, 1, integer=True)
        check_type("WorkerConfig.encoder", self.encoder, Encoder, "an Encoder(...)")
        check_type("WorkerConfig.timeouts", self.timeouts, Timeouts, "a Timeouts(...)")
        check_type("WorkerConfig.logging", self.logging, Logging, "a Logging(...)")
        if self.starvation is not None:
            check_type(
                "WorkerConfig.starvation", self.starvation, Starvation, "a Starvation(...) or None"
            )
        check_choice("WorkerConfig.delivery", self.delivery, DELIVERY_MODES)
        check_number("WorkerConfig.lease_seconds", self.lease_seconds, 1)
        check_number("WorkerConfig.max_deliveries", self.max_deliveries, 0, integer=True)
        check_number("WorkerConfig.block_seconds", self.block_seconds, 0)
        check_number("WorkerConfig.result_ttl_seconds", self.result_ttl_seconds, 0)
        prefetch = self.prefetch
        if prefetch is not None and (
            not isinstance(prefetch, int) or not 0 <= prefetch <= MAX_PREFETCH
        ):
            fail(
                "WorkerConfig.prefetch",
                prefetch,
                f"use None, True, False or a number of pulls from 0 to {MAX_PREFETCH}",
            )
        limits = (self.rate_limit, self.group_concurrency, self.group_rate_limit)
        check_flow(self.schedules, *limits, self.delivery)

    def replace(self, **changes: typing.Any) -> WorkerConfig:
        """A copy with some fields changed (validated like the original)."""
        return dataclasses.replace(self, **changes)
