"""When triggers fall due (docs/architecture.md, "Trigger state"): the retry ladder, the lease's
length, which webhooks may send, and the due queries the sweeper and the metrics read."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy import ColumnElement, Select, func, select

from webhookapp.engine.timing import LEASE_MARGIN_MAX
from webhookapp.infra.extensions import db
from webhookapp.models import Webhook

TABLE = Webhook.__table__


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


def lease_seconds() -> float:
    """How long a claimed attempt may take before the sweeper hands it to another worker.

    An attempt lasts at most about twice the delivery timeout (connect, then reads bounded by
    the timeout and the deadline), so the lease is that plus a margin.
    """
    timeout = float(current_app.config["WEBHOOK_DELIVERY_TIMEOUT"])
    return 2 * timeout + min(timeout, LEASE_MARGIN_MAX)


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
