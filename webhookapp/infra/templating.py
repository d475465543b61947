"""Jinja filters and globals shared by every page."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from flask import Flask

from webhookapp.core import catalog
from webhookapp.core.times import aware_utc, utcnow


def format_datetime(value: datetime | None, seconds: bool = False) -> str:
    """``2026-11-22 18:58 UTC`` (with ``:07`` seconds if asked) or an em dash."""
    if not value:
        return "—"
    return value.strftime("%Y-%m-%d %H:%M:%S UTC" if seconds else "%Y-%m-%d %H:%M UTC")


SOON = timedelta(minutes=1)


def format_due(value: datetime | None) -> str:
    """A time something falls due: :func:`format_datetime`, with seconds when it is less than a
    minute away (a retry 40 s off would otherwise read as a minute that may be past already)."""
    if not value:
        return "—"
    return format_datetime(value, seconds=abs(aware_utc(value) - utcnow()) < SOON)


def json_text(value: object) -> str:
    """A JSON value indented for reading, keys in their order, non-ASCII as typed."""
    return json.dumps(value, indent=2, ensure_ascii=False)


def pretty_json(text: str | None) -> str:
    """Indent a JSON document for reading; other text is returned as it is."""
    try:
        return json_text(json.loads(text or ""))
    except (ValueError, RecursionError):  # not JSON, or nested too deeply to indent
        return text or ""


def register_filters(app: Flask) -> None:
    app.jinja_env.filters["datetime"] = format_datetime
    app.jinja_env.filters["due"] = format_due
    app.jinja_env.filters["pretty_json"] = pretty_json
    app.jinja_env.filters["json_text"] = json_text
    app.jinja_env.globals["catalog"] = catalog
