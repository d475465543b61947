"""Trigger state (DESIGN §6, §9): coalescing, atomic claims, outcomes, retries, reclaiming leases.

Each webhook is a doorbell. Its row holds at most one *pending* trigger (``next_trigger_at``,
after ``trigger_attempts`` failures) and at most one attempt *in flight* (``lease_*``). Every
change is one conditional UPDATE, so concurrent web processes and workers never double-send or
lose an increment; the database, not Redis, decides what is due.
"""

from __future__ import annotations

import functools
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import ColumnElement, Update, bindparam, case, delete, func, select, update

from ..extensions import db
from ..models import Attempt, UTCDateTime, Webhook, utcnow
from .signing import WebhookSnapshot


@dataclass(frozen=True)
class Claim:
    """An attempt this process may make: the lease it holds and what to send."""

    webhook: WebhookSnapshot
    lease_id: str
    attempt: int
    api_url: str | None
    claimed_at: datetime


def retry_delay(failed_attempts: int) -> float:
    """Seconds before the next attempt after ``failed_attempts`` failures: base × factor^(n-1), capped."""
    config = current_app.config
    base = float(config["WEBHOOK_RETRY_BASE"])
    delay = base * float(config["WEBHOOK_RETRY_FACTOR"]) ** max(failed_attempts - 1, 0)
    return min(max(delay, base), float(config["WEBHOOK_RETRY_MAX_INTERVAL"]))


def lease_seconds() -> float:
    """How long a claimed attempt may take before the sweeper hands it to another worker.

    An attempt lasts at most about twice the delivery timeout (connect, then reads bounded by
    the timeout and the deadline), so the lease is that plus a margin.
    """
    timeout = float(current_app.config["WEBHOOK_DELIVERY_TIMEOUT"])
    return 2 * timeout + min(timeout, 30.0)


def _sendable() -> tuple:
    return (Webhook.active.is_(True), Webhook.out_of_order.is_(False), Webhook.type == "event")


def _due_conditions(now: ColumnElement[datetime]) -> tuple:
    return (*_sendable(), Webhook.next_trigger_at <= now, Webhook.lease_expires_at.is_(None))


SNAPSHOT_COLUMNS = (
    "id", "label", "object_class", "account_id", "product_id", "http_method", "external_url", "jwt_secret",
    "headers", "data", "last_success_at", "last_failure_at",
)  # fmt: skip


@functools.cache
def _claim_statement(of_given_webhooks: bool) -> Update:
    """The claim, built once: a delivery job claims many times a second, and building and keying a
    statement this size costs more than running it."""
    now = bindparam("now", type_=UTCDateTime())
    candidates = (
        select(Webhook.id)
        .where(*_due_conditions(now))
        .order_by(Webhook.next_trigger_at, Webhook.id)
        .limit(bindparam("limit"))
        # SKIP LOCKED lets claimers on PostgreSQL pass each other.
        .with_for_update(skip_locked=True)
    )
    if of_given_webhooks:
        candidates = candidates.where(Webhook.id.in_(bindparam("webhook_ids", expanding=True)))
    # MATERIALIZED: PostgreSQL would otherwise re-run the subquery per row and claim past the limit.
    chosen = candidates.cte("chosen").prefix_with("MATERIALIZED")
    table = Webhook.__table__
    return (
        update(table)
        # The repeated conditions make the UPDATE itself the arbiter wherever a snapshot is stale.
        .where(table.c.id.in_(select(chosen.c.id)), *_due_conditions(now))
        .values(
            lease_id=bindparam("lease_id"),
            lease_expires_at=bindparam("lease_expires_at", type_=UTCDateTime()),
            lease_attempt=table.c.trigger_attempts + 1,
            next_trigger_at=None,
            trigger_attempts=0,
        )
        .returning(*(table.c[name] for name in SNAPSHOT_COLUMNS), table.c.lease_attempt, table.c.last_event_api_url)
    )


def claim_due(limit: int, webhook_ids: list[str] | None = None) -> list[Claim]:
    """Atomically move up to ``limit`` due triggers into flight (those of ``webhook_ids`` only, if given)."""
    if limit <= 0:
        return []
    now = utcnow()
    lease_id = secrets.token_hex(8)
    params: dict[str, Any] = {
        "now": now,
        "limit": limit,
        "lease_id": lease_id,
        "lease_expires_at": now + timedelta(seconds=lease_seconds()),
    }
    if webhook_ids:
        params["webhook_ids"] = list(webhook_ids)
    # One statement in autocommit: a single round trip to the database (no BEGIN, no COMMIT),
    # which is most of the time between a doorbell and the send.
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        claimed = connection.execute(_claim_statement(bool(webhook_ids)), params).all()
    return [
        Claim(
            webhook=WebhookSnapshot(**{name: row._mapping[name] for name in SNAPSHOT_COLUMNS}),
            lease_id=lease_id,
            attempt=row.lease_attempt,
            api_url=row.last_event_api_url,
            claimed_at=now,
        )
        for row in claimed
    ]


def snapshot(webhook: Webhook) -> WebhookSnapshot:
    return WebhookSnapshot(
        id=webhook.id,
        label=webhook.label,
        object_class=webhook.object_class,
        account_id=webhook.account_id,
        product_id=webhook.product_id,
        http_method=webhook.http_method,
        external_url=webhook.external_url,
        jwt_secret=webhook.jwt_secret,
        headers=dict(webhook.headers or {}),
        data=dict(webhook.data or {}),
        last_success_at=webhook.last_success_at,
        last_failure_at=webhook.last_failure_at,
    )


def reclaim_expired() -> int:
    """Turn attempts whose lease ran out (a worker died) back into due triggers; returns how many.

    A disabled webhook gets no trigger back: disabled webhooks send nothing.
    """
    now = utcnow()
    table = Webhook.__table__
    # Rows are locked in id order, as ingest locks them, so the two never deadlock.
    expired = (
        select(table.c.id)
        .where(table.c.lease_expires_at < now)
        .order_by(table.c.id)
        .with_for_update(skip_locked=True)
        .cte("expired")
        .prefix_with("MATERIALIZED")
    )
    reclaimed = db.session.execute(
        update(table)
        .where(table.c.id.in_(select(expired.c.id)), table.c.lease_expires_at < now)
        .values(
            lease_id=None,
            lease_expires_at=None,
            lease_attempt=0,
            # SET expressions see the old row: keep a pending trigger's count, else resume the lost one's.
            trigger_attempts=case(
                (table.c.next_trigger_at.is_(None), table.c.lease_attempt - 1), else_=table.c.trigger_attempts
            ),
            next_trigger_at=case((table.c.active.is_(True), func.coalesce(table.c.next_trigger_at, now)), else_=None),
        )
        .returning(table.c.id)  # counted from RETURNING: SQLite reports no rowcount for WITH … UPDATE
    ).all()
    db.session.commit()
    return len(reclaimed)


def next_due_at() -> datetime | None:
    """When the earliest pending trigger that could be sent falls due (past times included)."""
    query = select(func.min(Webhook.next_trigger_at)).where(*_sendable(), Webhook.lease_expires_at.is_(None))
    return db.session.scalar(query)


def make_due_now(webhook: Webhook, *, count_event: bool) -> None:
    """Trigger Now and re-enabling: the pending trigger (created if needed) falls due at once."""
    now = utcnow()
    values: dict = {"next_trigger_at": now, "out_of_order": False}
    if webhook.out_of_order:
        values["trigger_attempts"] = 0
    if count_event:
        values.update(events_count=Webhook.events_count + 1, last_event_at=now)
    db.session.execute(
        update(Webhook).where(Webhook.id == webhook.id).values(values).execution_options(synchronize_session=False)
    )


def prune_attempts() -> int:
    """Delete attempts older than ``WEBHOOK_ATTEMPT_RETENTION_DAYS``; statistics stay."""
    cutoff = utcnow() - timedelta(days=float(current_app.config["WEBHOOK_ATTEMPT_RETENTION_DAYS"]))
    result = db.session.execute(delete(Attempt).where(Attempt.started_at < cutoff))
    db.session.commit()
    return result.rowcount
