"""The environment that configures a test worker class in its own processes."""

from __future__ import annotations

import json

__all__ = ["environment"]


def environment(
    prefix: str, connector: tuple[str, dict[str, object]], ledger: str, **settings: object
) -> dict[str, str]:
    """``<prefix>_CONNECTOR`` (type and params as JSON), ``<prefix>_LEDGER``, and each
    of ``settings`` as ``<prefix>_<NAME>``."""
    kind, params = connector
    env = {
        f"{prefix}_CONNECTOR": json.dumps({"type": kind, "params": params}),
        f"{prefix}_LEDGER": ledger,
    }
    env.update({f"{prefix}_{name.upper()}": str(value) for name, value in settings.items()})
    return env
