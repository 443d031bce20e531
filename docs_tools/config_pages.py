"""The field sections of docs/reference/config/*.md, generated from ``sergeant.config``.

Each field of a config dataclass has one section, ``### `field` ``, in field order.
Its first paragraph, between markers, is generated: the type, the default and the
field's entry in the class docstring's ``Attributes:``. The prose after it is
hand-written and kept, except that every ``ConfigError: Class.field is VALUE; ...``
line in it is rewritten with the message the code gives for that value.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import itertools
import logging
import re
import tempfile
import typing
from pathlib import Path

from sergeant import config
from sergeant.errors import ConfigError

__all__ = ["CONFIG_PAGES", "GeneratorError", "field_docs", "render"]

#: Each config dataclass and the reference page (under docs/) that documents it.
CONFIG_PAGES: dict[str, type] = {
    "reference/config/workerconfig.md": config.WorkerConfig,
    "reference/config/connector.md": config.Connector,
    "reference/config/encoder.md": config.Encoder,
    "reference/config/timeouts.md": config.Timeouts,
    "reference/config/logging.md": config.Logging,
    "reference/config/loggingevents.md": config.LoggingEvents,
    "reference/config/starvation.md": config.Starvation,
    "reference/config/schedule.md": config.Schedule,
    "reference/config/ratelimit.md": config.RateLimit,
}

BEGIN = (
    "<!-- generated from sergeant/config.py: edit the docstring, then run python -m docs_tools -->"
)
END = "<!-- end of generated text -->"

_FIELD_HEADING = re.compile(r"^### `(\w+)`$")
_ANY_HEADING = re.compile(r"^#{1,6} ")
_ERROR_LINE = re.compile(r"^ConfigError: (\w+)\.(\w+) is (.*)$")


class GeneratorError(Exception):
    """A page or a docstring is in a shape the generator cannot resolve by itself."""


def field_docs(cls: type) -> dict[str, str]:
    """The ``Attributes:`` entries of a dataclass's docstring, by field name.

    Raises:
        GeneratorError: a field has no entry, or an entry names no field.
    """
    entries: dict[str, list[str]] = {}
    inside = False
    for line in (inspect.getdoc(cls) or "").splitlines():
        if line.strip() == "Attributes:":
            inside = True
        elif inside and line and not line.startswith(" "):
            inside = False
        elif inside and line.strip():
            match = re.match(r"^ {4}(\w+): (.*)$", line)
            if match:
                entries[match.group(1)] = [match.group(2)]
            elif entries:
                entries[list(entries)[-1]].append(line.strip())
    names = [field.name for field in dataclasses.fields(cls)]
    where = f"the docstring of sergeant.config.{cls.__name__}"
    missing = [name for name in names if name not in entries]
    if missing:
        raise GeneratorError(f"{where} has no Attributes: entry for {', '.join(missing)}; add one")
    unknown = [name for name in entries if name not in names]
    if unknown:
        raise GeneratorError(f"{where} documents {', '.join(unknown)}, which are not fields")
    return {name: _markdown(" ".join(lines)) for name, lines in entries.items()}


def _markdown(text: str) -> str:
    return text.replace("``", "`")


def _spell_type(field: dataclasses.Field[typing.Any]) -> str:
    """The annotation as written in config.py, config classes linked to their pages."""
    spelled = str(field.type).replace("typing.", "").replace("std_logging.", "logging.")
    pages = {cls.__name__: Path(page).name for page, cls in CONFIG_PAGES.items()}
    parts = [
        f"[`{part}`]({pages[part]})" if part in pages else f"`{part}`"
        for part in spelled.replace('"', "'").split(" | ")
    ]
    return " or ".join(parts)


def _spell_default(cls: type, field: dataclasses.Field[typing.Any]) -> str:
    if field.default is not dataclasses.MISSING:
        value: object = field.default
    elif field.default_factory is not dataclasses.MISSING:
        value = field.default_factory()
    else:
        return "required"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        try:
            if value == type(value)():
                return f"default `{type(value).__name__}()`"
        except TypeError:
            pass  # a class with required fields: spelled in full below
    if cls is config.Logging and field.name == "level" and isinstance(value, int):
        return f"default `logging.{logging.getLevelName(value)}`"
    # The default SQLite file lives in the temp dir, which differs between machines.
    return "default `" + repr(value).replace(tempfile.gettempdir(), "<temp dir>") + "`"


def _summary(cls: type, field: dataclasses.Field[typing.Any], doc: str) -> str:
    doc = doc[:1].upper() + doc[1:]
    return f"{_spell_type(field)}, {_spell_default(cls, field)}. {doc}"


#: Values for the required fields, so that one field at a time can be given a bad value.
_REQUIRED: dict[type, dict[str, object]] = {
    config.WorkerConfig: {"name": "queue"},
    config.Connector: {"params": {}},
    config.Starvation: {"time_with_no_tasks": 1},
    config.Schedule: {"every_seconds": 30},
    config.RateLimit: {"tasks": 10},
}


def _config_error(cls: type, field: str, rest: str, page: str) -> str | None:
    """The code's message for ``cls(field=VALUE)``; None when VALUE is not a literal."""
    for cut in [match.start() for match in re.finditer("; ", rest)]:
        try:
            value = ast.literal_eval(rest[:cut])
        except (ValueError, SyntaxError):
            continue
        try:
            cls(**{**_REQUIRED.get(cls, {}), field: value})
        except ConfigError as exc:
            return f"ConfigError: {exc}"
        raise GeneratorError(
            f"{page} shows a ConfigError for {cls.__name__}.{field}={value!r}, "
            "but the code accepts that value; change the example"
        )
    return None


def _rewrite_errors(text: str, page: str) -> str:
    classes = {cls.__name__: cls for cls in CONFIG_PAGES.values()}
    lines = []
    for line in text.split("\n"):
        match = _ERROR_LINE.match(line)
        cls = classes.get(match.group(1)) if match else None
        names = {f.name for f in dataclasses.fields(cls)} if cls else set()
        if match and cls and match.group(2) in names:
            line = _config_error(cls, match.group(2), match.group(3), page) or line
        lines.append(line)
    return "\n".join(lines)


def _headings(lines: list[str]) -> list[tuple[int, str | None]]:
    """Each heading outside code fences: its line index and, for a field section, the field."""
    fenced = False
    found: list[tuple[int, str | None]] = []
    for index, line in enumerate(lines):
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and _ANY_HEADING.match(line):
            match = _FIELD_HEADING.match(line)
            found.append((index, match.group(1) if match else None))
    return found


def _split(text: str, page: str) -> tuple[str, dict[str, str], str]:
    """The text before the field sections, each section's hand-written body, the rest."""
    lines = text.split("\n")
    headings = [*_headings(lines), (len(lines), None)]
    bodies: dict[str, str] = {}
    first = last = None
    for (start, name), (end, _) in itertools.pairwise(headings):
        if name is None:
            continue
        if name in bodies:
            raise GeneratorError(f"{page} has two ### `{name}` sections; merge them into one")
        if last is not None and start != last:
            raise GeneratorError(f"{page}: the field sections must follow each other ({name})")
        bodies[name] = "\n".join(lines[start + 1 : end])
        first = start if first is None else first
        last = end
    if first is None or last is None:
        raise GeneratorError(f"{page} has no ### `field` section")
    return "\n".join(lines[:first]), bodies, "\n".join(lines[last:])


def _hand_written(body: str) -> str:
    if BEGIN in body:
        before, _, after = body.partition(BEGIN)
        if END not in after:
            raise GeneratorError(f"a generated block has no closing {END}")
        body = before + after.partition(END)[2]
    return body.strip("\n")


def render(text: str, cls: type, page: str) -> str:
    """``text`` with the field sections of ``cls`` regenerated, in field order.

    Raises:
        GeneratorError: a section is duplicated or names no field, or a docstring
            entry is missing.
    """
    head, bodies, tail = _split(text, page)
    fields = dataclasses.fields(cls)
    names = [field.name for field in fields]
    unknown = [name for name in bodies if name not in names]
    if unknown:
        raise GeneratorError(
            f"{page} has sections for {', '.join(unknown)}, which are not fields of "
            f"{cls.__name__}; remove them or move their text to the right section"
        )
    docs = field_docs(cls)
    sections = []
    for field in fields:
        prose = _hand_written(bodies.get(field.name, ""))
        parts = [f"### `{field.name}`", f"{BEGIN}\n{_summary(cls, field, docs[field.name])}\n{END}"]
        sections.append("\n\n".join([*parts, prose] if prose else parts))
    rest = "\n" + tail.lstrip("\n") if tail.strip() else ""
    page_text = head.rstrip("\n") + "\n\n" + "\n\n".join(sections) + "\n" + rest
    return _rewrite_errors(page_text, page)
