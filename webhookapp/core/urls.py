"""Redirect targets taken from user input."""

from __future__ import annotations

from urllib.parse import urlsplit


def safe_local_path(target: str | None, default: str) -> str:
    """``target`` if it is a path on this site, else ``default``: no open redirects."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc:
            return target
    return default
