"""Logs for machines (docs/architecture.md, "Operations"): with ``LOG_FORMAT=json`` every process
writes one JSON object per line to stderr.

Each line has ``time`` (ISO 8601, UTC), ``level``, ``logger`` and ``message``, plus the ids a
line is about when it has them: ``webhook_id``, ``attempt`` (its number within the trigger),
``attempt_id`` and ``event_id``, and ``exc_info`` (the traceback, as text). The engine passes the
ids with ``extra=``; the event API, whose log lines come from deep in the ingest path, binds the
event's id for the time of the request with :func:`context`.

The access lines of requests nobody reads the log for (static files, the live pages' polls) are
written at DEBUG, not INFO (:func:`quiet_access`), so that a page view is one line.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
import sys
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

FORMATS = ("text", "json")
CONTEXT_FIELDS = ("webhook_id", "attempt", "attempt_id", "event_id")
TEXT_FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"

# The servers' access loggers: the development server's (werkzeug) and gunicorn's.
ACCESS_LOGGERS = ("werkzeug", "gunicorn.access")
# The path in an access line's request ("GET /static/app.css HTTP/1.1"); werkzeug may colour it.
_REQUEST_PATH = re.compile(r'"(?:\x1b\[[\d;]*m)?[A-Z]+ (/[^\s?"]*)')

_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("webhookapp_log", default=None)


@contextlib.contextmanager
def context(**ids: Any) -> Iterator[None]:
    """Ids that every line logged meanwhile, in this thread or task, carries (unless it names its own)."""
    token = _context.set((_context.get() or {}) | ids)
    try:
        yield
    finally:
        _context.reset(token)


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        bound = _context.get() or {}
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is None:
                value = bound.get(name)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        # default=str: a message argument of any type still makes a line, never an error.
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure(log_format: str, level: int = logging.INFO) -> None:
    """Send the root logger's records to stderr as text or JSON lines (``LOG_FORMAT``).

    Idempotent: the handler installed here replaces the one installed before, so an app factory
    called again (a worker, tests) does not double every line.
    """
    if log_format not in FORMATS:
        raise ValueError(f"LOG_FORMAT must be one of {', '.join(FORMATS)}, not {log_format!r}.")
    root = logging.getLogger()
    for handler in [handler for handler in root.handlers if getattr(handler, "webhookapp", False)]:
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.webhookapp = True  # type: ignore[attr-defined]
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(level)


class QuietRequests(logging.Filter):
    """Moves the access lines of the requests whose path matches ``paths`` from INFO to DEBUG
    (and drops them where DEBUG is not logged)."""

    def __init__(self, paths: re.Pattern[str]):
        super().__init__()
        self.paths = paths

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or not self.paths.match(_request_path(record)):
            return True
        if not logging.getLogger(record.name).isEnabledFor(logging.DEBUG):
            return False
        record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
        return True


def _request_path(record: logging.LogRecord) -> str:
    # gunicorn passes its atoms (U: the path); werkzeug a formatted line.
    if isinstance(record.args, Mapping) and isinstance(record.args.get("U"), str):
        return str(record.args["U"])
    found = _REQUEST_PATH.search(record.getMessage())
    return found.group(1) if found else ""


def quiet_access(paths: str) -> None:
    """Log the requests whose path matches the regular expression ``paths`` at DEBUG in the
    servers' access logs. Idempotent, like :func:`configure`."""
    for name in ACCESS_LOGGERS:
        logger = logging.getLogger(name)
        for installed in [each for each in logger.filters if isinstance(each, QuietRequests)]:
            logger.removeFilter(installed)
        logger.addFilter(QuietRequests(re.compile(paths)))
