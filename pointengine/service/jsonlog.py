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
from urllib.parse import unquote

import orjson

from pointengine.model.privacy import redact

__all__ = ["AccessFormatter", "JsonFormatter", "configure", "uvicorn_log_config"]


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


class AccessFormatter(JsonFormatter):
    """uvicorn's access lines, with the request's parts as fields of their own (the path, and
    its query, masked like every other string)."""

    def format(self, record: logging.LogRecord) -> str:
        """The access line as JSON: client, method, path, HTTP version and status."""
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and not hasattr(record, "fields"):
            client, method, path, version, status = args
            # uvicorn gives the path as sent: a percent-encoded My Number (1234%205678%209018)
            # is masked once decoded
            path = unquote(str(path))
            record.args = (client, method, path, version, status)
            record.fields = {"client": client, "method": method, "path": path,
                             "http_version": version, "status": status}
        return super().format(record)


def uvicorn_log_config(level: str = "info") -> dict[str, Any]:
    """uvicorn's ``log_config``: its own logs (startup, shutdown, errors) and its access lines
    as JSON lines on stderr, beside the service's; given to every process it starts."""
    level = level.upper()

    def handler(formatter: str) -> dict[str, str]:
        return {"class": "logging.StreamHandler", "formatter": formatter,
                "stream": "ext://sys.stderr"}

    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"},
                       "access": {"()": f"{__name__}.AccessFormatter"}},
        "handlers": {"default": handler("json"), "access": handler("access")},
        # uvicorn's loggers do not propagate: the root logger's handler (configure) would
        # write each line twice
        "loggers": {"uvicorn": {"handlers": ["default"], "level": level, "propagate": False},
                    "uvicorn.error": {"level": level},
                    "uvicorn.access": {"handlers": ["access"], "level": level,
                                       "propagate": False}},
    }


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a line is written, not to the one there was
    when logging was configured (which a caller that swaps it, a test runner, closes)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass  # always sys.stderr


def configure(level: str = "INFO") -> None:
    """Log JSON lines to stderr from the root logger at ``level``."""
    handler = _Stderr()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
