"""Structured logs: one JSON object per line, with every 12-digit run masked.

:func:`configure` installs :class:`JsonFormatter` on the root logger. Extra fields passed as
``logger.info("accepted", extra={"fields": {...}})`` are merged into the object. The message
and every string field go through :func:`~pointengine.model.privacy.redact`, so a My Number that
slipped into a message is never written.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
from typing import Any

import orjson

from pointengine.model.privacy import redact

__all__ = ["JsonFormatter", "configure"]


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value.encode()).decode()
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line: time, level, logger, message and extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as JSON (My Numbers masked)."""
        doc: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            doc.update(fields)
        if record.exc_info:
            doc["error"] = self.formatException(record.exc_info)
        return orjson.dumps(_clean(doc), default=str).decode()


def configure(level: str = "INFO") -> None:
    """Log JSON lines to stderr from the root logger at ``level``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
