"""Jinja filters and globals shared by every page."""

from __future__ import annotations

from datetime import datetime

from flask import Flask

from . import catalog


def format_datetime(value: datetime | None) -> str:
    """``2026-11-22 18:58 UTC`` or an em dash."""
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "—"


def register_filters(app: Flask) -> None:
    app.jinja_env.filters["datetime"] = format_datetime
    app.jinja_env.globals["catalog"] = catalog
