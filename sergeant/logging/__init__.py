"""Logging helpers: ``sergeant.logging.logstash`` handlers (0.27)."""

from __future__ import annotations

from sergeant.logging import logstash

__all__ = ["logstash"]
