"""The shape of a task's kwargs, checked when it is pushed: a ``dict``, with ``str`` keys.

Checked at push, so a wrong value fails in the producer, naming the argument,
instead of in a worker as an undecodable payload. Keys must be ``str`` under the
serializers that need it (msgpack decodes some other keys to unhashable values;
json has no other keys); pickle keeps any key, as in 0.27, and that leaves the
default path at one C-level type test per task (about 12 ns; checking keys too
costs 40-60 ns per task, a few percent of a bulk push).
"""

from __future__ import annotations

import typing

__all__ = ["STR_KEYS", "checked_kwargs"]

#: Serializers under which every kwargs key must be a ``str``.
STR_KEYS = frozenset({"msgpack", "json"})

_EXAMPLE = "such as {'id': 7}"
_PLAIN_DICTS = frozenset({dict})


def checked_kwargs(
    kwargs_list: typing.Sequence[typing.Any], argument: str, batch: bool, serializer: str
) -> typing.Sequence[dict[str, typing.Any]]:
    """``kwargs_list`` if every item is a plain dict (with str keys, under :data:`STR_KEYS`).

    A dict subclass (``OrderedDict``, ``defaultdict``) is copied into a plain dict,
    as workers decode only plain dicts; the list returned is then a new one.

    Args:
        kwargs_list: one kwargs per task.
        argument: how the caller's argument is written in messages, such as
            ``'push_tasks(kwargs_list)'``.
        batch: name the item by its index (``push_tasks``), or not (one task).
        serializer: the ``Encoder.serializer`` in use.

    Raises:
        TypeError: an item is not a dict, or has a key that is not a str under a
            serializer that needs one; the message names ``argument``, the item
            and the value.
    """
    str_keys = serializer in STR_KEYS
    if not str_keys:
        if _PLAIN_DICTS.issuperset(map(type, kwargs_list)):
            return kwargs_list
        return _slow_check(kwargs_list, argument, batch, serializer)
    for kwargs in kwargs_list:
        if type(kwargs) is not dict:
            break
        for key in kwargs:
            if type(key) is not str:
                break
        else:
            continue
        break
    else:
        return kwargs_list
    return _slow_check(kwargs_list, argument, batch, serializer)


def _slow_check(
    kwargs_list: typing.Sequence[typing.Any], argument: str, batch: bool, serializer: str
) -> list[dict[str, typing.Any]]:
    """The batch with subclasses made plain, or the error for its first bad item."""
    plain: list[dict[str, typing.Any]] = []
    for index, kwargs in enumerate(kwargs_list):
        where = f"{argument}: item {index}" if batch else argument
        if not isinstance(kwargs, dict):
            raise TypeError(
                f"{where} is {_a(kwargs)} ({kwargs!r:.80}), not a dict; a task's kwargs are "
                f"a dict of argument names to values, {_EXAMPLE}"
            )
        for key in kwargs if serializer in STR_KEYS else ():
            if not isinstance(key, str):
                raise TypeError(
                    f"{where} has the key {key!r:.40} ({type(key).__name__}); the "
                    f"{serializer!r} serializer needs str keys (a task's kwargs are keyed by "
                    f"argument names), {_EXAMPLE}"
                )
        plain.append(kwargs if type(kwargs) is dict else dict(kwargs))
    return plain


def _a(value: object) -> str:
    name = type(value).__name__
    return f"{'an' if name[:1] in 'aeiou' else 'a'} {name}"
