"""Time as every layer writes it: aware UTC in code, naive UTC in the database's columns, ISO 8601
with ``+00:00`` on the wire."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def naive_utc(moment: datetime) -> datetime:
    """An aware ``moment`` as the columns hold it: naive UTC, the one form both databases store alike.

    Written by the column type (:class:`webhookapp.models.UTCDateTime`) and by the SQL that
    bypasses it (the PostgreSQL fast paths' raw statements), so that both store the same."""
    return moment.astimezone(UTC).replace(tzinfo=None)


def aware_utc(moment: datetime) -> datetime:
    """``moment`` if it has a zone; a naive one (a column's value, a time given without a zone)
    taken as UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def isoformat(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC with ``+00:00`` and whole seconds, or None."""
    if moment is None:
        return None
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()
