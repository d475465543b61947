"""Time as every layer writes it: aware UTC in code, ISO 8601 with ``+00:00`` on the wire."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def isoformat(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC with ``+00:00`` and whole seconds, or None."""
    if moment is None:
        return None
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()
