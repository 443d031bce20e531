"""Logging helpers: ``JsonFormatter`` for JSON lines, and the logstash handlers (0.27)."""

from __future__ import annotations

import logging

from sergeant.logging import logstash
from sergeant.logging.logstash import record_to_json

__all__ = ["JsonFormatter", "logstash"]


class JsonFormatter(logging.Formatter):
    """Formats each record as one JSON object on one line (``Logging(json=True)``).

    The fields are those logstash receives, in 0.27's shape (see
    ``logstash.record_to_json``): ``@timestamp``, ``message``, ``level``, ``name``,
    ``emitter`` (where the record was made), ``extra`` (every ``extra`` field, such
    as the stable ``event`` name each Sergeant lifecycle line carries) and
    ``exception`` when there is one.
    """

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON object, without the trailing newline."""
        return record_to_json(record).decode("utf-8").rstrip("\n")
