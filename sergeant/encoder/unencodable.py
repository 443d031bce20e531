"""Why a task could not be encoded: the serializer in use, the value, and what fits.

Only called once ``dumps`` has failed, so it may re-encode values one by one to
find the first that fails, by its path in the kwargs (``kwargs['a'][1]``).
"""

from __future__ import annotations

import typing

__all__ = ["explain"]

#: What each serializer takes, and what to do instead.
HINTS: dict[str, str] = {
    "pickle": (
        "pickle encodes plain data and most objects, but not locks, sockets, open files, "
        "generators or lambdas: pass what a worker needs to make it again (a path, an id, "
        "settings)"
    ),
    "msgpack": (
        "msgpack encodes None, bool, int, float, str, bytes, lists and dicts: convert the "
        "value (str(), list(), .isoformat()), or choose Encoder(serializer='pickle') if only "
        "trusted producers write to the broker"
    ),
    "json": (
        "json encodes None, bool, int, float, str, lists and dicts with str keys: convert the "
        "value (str(), list(), .isoformat()), or choose Encoder(serializer='msgpack') for "
        "bytes, or 'pickle' if only trusted producers write to the broker"
    ),
}

_MAX_DEPTH = 20


def explain(
    dumps: typing.Callable[[typing.Any], bytes],
    serializer: str,
    kwargs_list: typing.Sequence[typing.Any],
    error: Exception,
) -> str:
    """The message for an encoding ``error``: which task, which value, and what fits."""
    for index, kwargs in enumerate(kwargs_list):
        if _fails(dumps, kwargs):
            path, value = _first_failing(dumps, kwargs, "kwargs", 0)
            where = f"item {index}: " if len(kwargs_list) > 1 else ""
            return (
                f"{where}{path} = {value!r:.80} ({type(value).__name__}) cannot be encoded "
                f"with the {serializer!r} serializer ({error}); "
                f"{HINTS.get(serializer, 'pass plain values')}"
            )
    return f"task cannot be encoded with the {serializer!r} serializer: {error}"


def _fails(dumps: typing.Callable[[typing.Any], bytes], value: object) -> bool:
    try:
        dumps(value)
    except Exception:
        return True
    return False


def _first_failing(
    dumps: typing.Callable[[typing.Any], bytes], value: object, path: str, depth: int
) -> tuple[str, object]:
    """The deepest path under ``value`` (which fails) whose value fails on its own."""
    if depth < _MAX_DEPTH:
        items: typing.Iterable[tuple[object, object]] = ()
        if isinstance(value, dict):
            items = value.items()
        elif isinstance(value, (list, tuple)):
            items = enumerate(value)
        for key, item in items:
            if _fails(dumps, item):
                return _first_failing(dumps, item, f"{path}[{key!r}]", depth + 1)
    return path, value
