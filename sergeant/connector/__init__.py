"""Connectors: the broker engines Sergeant stores tasks in.

``create(type, params)`` builds one from ``sergeant.config.Connector`` values. The
engine modules are imported lazily, so a Redis worker never pays for pymongo.
"""

from __future__ import annotations

import importlib
import typing

from sergeant.connector.base import (
    ONCE_SETTLE_SECONDS,
    Connector,
    DeadLetter,
    Delivery,
    GroupCount,
    GroupLimits,
    Lock,
    Priority,
    ReclaimResult,
    Waiting,
)
from sergeant.errors import ConfigError

__all__ = [
    "CONNECTOR_TYPES",
    "ONCE_SETTLE_SECONDS",
    "Connector",
    "DeadLetter",
    "Delivery",
    "GroupCount",
    "GroupLimits",
    "Lock",
    "Priority",
    "ReclaimResult",
    "Waiting",
    "create",
]

#: Accepted ``Connector.type`` values and the module implementing each.
CONNECTOR_TYPES: dict[str, str] = {
    "local": "sergeant.connector.sqlite",
    "redis": "sergeant.connector.redis",
    "mongo": "sergeant.connector.mongo",
    "memory": "sergeant.connector.memory",
}


def create(kind: str, params: typing.Mapping[str, typing.Any]) -> Connector:
    """Build the connector of type ``kind`` (``Connector.type``) from its ``params``.

    Raises:
        ConfigError: ``kind`` is unknown, or ``params`` does not fit that connector.
    """
    module_name = CONNECTOR_TYPES.get(kind)
    if module_name is None:
        accepted = ", ".join(repr(name) for name in CONNECTOR_TYPES)
        raise ConfigError(f"Connector.type is {kind!r}; use one of {accepted}")
    module = importlib.import_module(module_name)
    connector_class: type[Connector] = module.Connector
    try:
        return connector_class(**params)
    except TypeError as exc:
        raise ConfigError(
            f"Connector.params {dict(params)!r} do not fit the {kind!r} connector: {exc}"
        ) from exc


def __getattr__(name: str) -> typing.Any:
    # ``sergeant.connector.redis`` etc. stay reachable as attributes, as in 0.27,
    # without importing every driver up front.
    if name in CONNECTOR_TYPES:
        return importlib.import_module(CONNECTOR_TYPES[name])
    raise AttributeError(f"module 'sergeant.connector' has no attribute {name!r}")
