"""Broker URLs to a connector's type and params, for ``Connector.from_url``."""

from __future__ import annotations

import typing
import urllib.parse

from sergeant._config_checks import fail

__all__ = ["ConnectorType", "parse_url"]

ConnectorType = typing.Literal["redis", "mongo", "local", "memory"]


def parse_url(url: str) -> tuple[ConnectorType, dict[str, typing.Any]]:
    """The connector type and params a URL names (see ``Connector.from_url``).

    Raises:
        ConfigError: the URL's scheme or shape is not an accepted one.
    """
    parsed = urllib.parse.urlsplit(url)
    scheme = parsed.scheme.lower()
    if scheme == "redis":
        database = parsed.path.lstrip("/") or "0"
        if not database.isdigit():
            fail("the Redis URL's database", database, "use a number, as in redis://host:6379/0")
        node: dict[str, typing.Any] = {
            "host": parsed.hostname or "localhost",
            "port": parsed.port or 6379,
            "password": urllib.parse.unquote(parsed.password) if parsed.password else None,
            "database": int(database),
        }
        if parsed.username:
            node["username"] = urllib.parse.unquote(parsed.username)
        return "redis", {"nodes": [node]}
    if scheme in ("rediss", "redis+cluster", "rediss+cluster"):
        return "redis", {"url": url}
    if scheme in ("mongodb", "mongodb+srv"):
        return "mongo", {"url": url}
    if scheme == "sqlite":
        if not parsed.path:
            fail("the SQLite URL", url, "write it as sqlite:///absolute/path.sqlite3")
        file_path = "/" + parsed.path.lstrip("/")
        if parsed.netloc:  # sqlite://tmp/x.sqlite3 would silently open /x.sqlite3
            meant = f"/{parsed.netloc}{file_path}"
            fail(
                "the SQLite URL",
                url,
                f"it reads {parsed.netloc!r} as a host and would open {file_path!r}: it "
                f"looks like a relative path with one slash short; write sqlite://{meant} "
                f"for {meant!r} (sqlite:// then an absolute path)",
            )
        return "local", {"file_path": file_path}
    if scheme == "memory":
        return "memory", {"name": parsed.netloc or "default"}
    fail(
        "the broker URL",
        url,
        "use redis://, rediss://, redis+cluster://, mongodb://, sqlite:/// or memory:// URLs",
    )
