"""When triggers fall due (docs/architecture.md, "Trigger state"): the retry ladder, the time a
handler asks for in its ``Retry-After``, the lease's length, which webhooks may send, and the due
queries the sweeper and the metrics read."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

from flask import current_app
from sqlalchemy import ColumnElement, Select, func, select

from webhookapp.engine.timing import LEASE_MARGIN_MAX
from webhookapp.infra.extensions import db
from webhookapp.models import Webhook

TABLE = Webhook.__table__

RETRY_AFTER_STATUSES = frozenset({429, 503})
"""The answers whose ``Retry-After`` sets the next attempt's time (RFC 9110 §10.2.3: Too Many
Requests and Service Unavailable); on any other status the header is left alone."""
RETRY_AFTER_FLOOR = 1.0
"""Seconds a handler's asked-for pause lasts at least: "Retry-After: 0" or a date in the past must
not turn the retry into a tight loop."""
_DELAY_SECONDS = re.compile(r"^[0-9]+$")  # RFC 9110's delay-seconds
_DELAY_DIGITS_MAX = 12  # more digits than this is longer than any cap: read as forever, not converted


def retry_delay(failed_attempts: int) -> float:
    """Seconds before the next attempt after ``failed_attempts`` failures (:func:`ladder_step`)."""
    config = current_app.config
    return ladder_step(failed_attempts, config)


def ladder_step(failed_attempts: int, settings: Mapping[str, Any]) -> float:
    """:func:`retry_delay` for these settings (a config, or the config class before any app):
    base × factor^(n-1), capped."""
    base = float(settings["WEBHOOK_RETRY_BASE"])
    delay = base * float(settings["WEBHOOK_RETRY_FACTOR"]) ** max(failed_attempts - 1, 0)
    return min(max(delay, base), float(settings["WEBHOOK_RETRY_MAX_INTERVAL"]))


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """The pause a ``Retry-After`` value asks for, from ``now``: delay-seconds or an HTTP date;
    None for anything else (a garbled header is ignored, the schedule applies)."""
    text = (value or "").strip()
    if not text:
        return None
    if _DELAY_SECONDS.match(text):
        return float(int(text)) if len(text) <= _DELAY_DIGITS_MAX else float("inf")
    try:
        asked = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if asked.tzinfo is None:  # "-0000" (no zone known) or none at all: not the HTTP date form
        return None
    return (asked - now).total_seconds()


def asked_delay(status: int | None, headers: Mapping[str, str] | None, now: datetime) -> float | None:
    """Seconds before the next attempt that a 429 or 503 answer's ``Retry-After`` asks for, kept
    within :data:`RETRY_AFTER_FLOOR` and the schedule's cap (``WEBHOOK_RETRY_MAX_INTERVAL``);
    None when the answer asks nothing usable and the schedule applies."""
    if status not in RETRY_AFTER_STATUSES or not headers:
        return None
    value = next((item for name, item in headers.items() if name.lower() == "retry-after"), None)
    seconds = retry_after_seconds(value, now)
    if seconds is None:
        return None
    cap = float(current_app.config["WEBHOOK_RETRY_MAX_INTERVAL"])
    return max(min(seconds, cap), RETRY_AFTER_FLOOR)


def lease_seconds() -> float:
    """How long a claimed attempt may take before the sweeper hands it to another worker.

    An attempt lasts at most about twice the delivery timeout (connect, then reads bounded by
    the timeout and the deadline), so the lease is that plus a margin.
    """
    timeout = float(current_app.config["WEBHOOK_DELIVERY_TIMEOUT"])
    return 2 * timeout + lease_margin()


def lease_margin() -> float:
    """Seconds a lease adds to the longest attempt. A claimed call waiting for a send thread uses
    it up: one that cannot start within half of it is handed back, never sent late
    (:mod:`.delivery.flight`)."""
    return min(float(current_app.config["WEBHOOK_DELIVERY_TIMEOUT"]), LEASE_MARGIN_MAX)


def sendable() -> tuple[ColumnElement[bool], ...]:
    return (TABLE.c.active.is_(True), TABLE.c.out_of_order.is_(False), TABLE.c.type == "event")


def due_conditions(now: datetime | ColumnElement[datetime]) -> tuple[ColumnElement[bool], ...]:
    return (*sendable(), TABLE.c.next_trigger_at <= now, TABLE.c.lease_expires_at.is_(None))


def due_count_query(now: datetime) -> Select[int]:
    """How many triggers a claim at ``now`` would find (the metrics' due gauge): the pending
    ones alone, read through ``ix_webhooks_due``."""
    return select(func.count()).select_from(TABLE).where(*due_conditions(now))


def next_due_query() -> Select[datetime]:
    """The earliest due time of a pending trigger that could be sent (past times included)."""
    return select(func.min(TABLE.c.next_trigger_at)).where(*sendable(), TABLE.c.lease_expires_at.is_(None))


def next_due_at() -> datetime | None:
    """When the earliest pending trigger that could be sent falls due (past times included)."""
    return db.session.scalar(next_due_query())
