"""The shape of a task's kwargs, checked when it is pushed: a ``dict``, with ``str`` keys.

Checked at push, so a wrong value fails in the producer, naming the argument,
instead of in a worker as an undecodable payload. Keys are argument names: ``str``
under every serializer (msgpack decodes some other keys to unhashable values, json
has no other keys, and one rule for all keeps a queue's serializer swappable). The
usual case is checked in C: one type test per task, and the keys joined into one
string, which raises on a key that is not a ``str`` (about 40 ns per task of two
keys, 2-3% of a bulk push).
"""

from __future__ import annotations

import itertools
import typing

__all__ = ["checked_kwargs"]

_EXAMPLE = "such as {'id': 7}"
_PLAIN_DICTS = frozenset({dict})


def checked_kwargs(
    kwargs_list: typing.Sequence[typing.Any], argument: str, batch: bool, serializer: str
) -> typing.Sequence[dict[str, typing.Any]]:
    """``kwargs_list`` if every item is a plain dict with str keys.

    A dict subclass (``OrderedDict``, ``defaultdict``) is copied into a plain dict,
    as workers decode only plain dicts; the list returned is then a new one.

    Args:
        kwargs_list: one kwargs per task.
        argument: how the caller's argument is written in messages, such as
            ``'push_tasks(kwargs_list)'``.
        batch: name the item by its index (``push_tasks``), or not (one task).
        serializer: the ``Encoder.serializer`` in use (named in messages).

    Raises:
        TypeError: an item is not a dict, or has a key that is not a str; the
            message names ``argument``, the item and the value.
    """
    if _PLAIN_DICTS.issuperset(map(type, kwargs_list)):
        try:  # in C: str.join raises on the first key that is not a str
            "".join(itertools.chain.from_iterable(kwargs_list))
        except TypeError:
            pass
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
        for key in kwargs:
            if not isinstance(key, str):
                raise TypeError(
                    f"{where} has the key {key!r:.40} ({type(key).__name__}); kwargs keys "
                    f"must be str (argument names; the {serializer!r} serializer is in use), "
                    f"{_EXAMPLE}"
                )
        plain.append(kwargs if type(kwargs) is dict else dict(kwargs))
    return plain


def _a(value: object) -> str:
    name = type(value).__name__
    return f"{'an' if name[:1] in 'aeiou' else 'a'} {name}"
