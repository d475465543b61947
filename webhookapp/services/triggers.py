"""Trigger state (DESIGN §6, §9): coalescing, atomic claims, outcomes, retries, reclaiming leases.

Each webhook is a doorbell. Its row holds at most one *pending* trigger (``next_trigger_at``,
after ``trigger_attempts`` failures) and at most one attempt *in flight* (``lease_*``). Every
change is one conditional UPDATE, so concurrent web processes and workers never double-send or
lose an increment; the database, not Redis, decides what is due.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import case, delete, func, select, update

from ..extensions import db
from ..models import Attempt, Webhook, utcnow
from .sender import AttemptResult, PreparedCall
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


def _due_conditions(now: datetime) -> tuple:
    return (*_sendable(), Webhook.next_trigger_at <= now, Webhook.lease_expires_at.is_(None))


def claim_due(limit: int, webhook_ids: list[str] | None = None) -> list[Claim]:
    """Atomically move up to ``limit`` due triggers into flight (those of ``webhook_ids`` only, if given)."""
    if limit <= 0:
        return []
    now = utcnow()
    lease_id = secrets.token_hex(8)
    candidates = select(Webhook.id).where(*_due_conditions(now)).order_by(Webhook.next_trigger_at).limit(limit)
    if webhook_ids:
        candidates = candidates.where(Webhook.id.in_(webhook_ids))
    # SKIP LOCKED lets claimers on PostgreSQL pass each other; the repeated conditions make the
    # UPDATE itself the arbiter wherever the subquery's snapshot is stale.
    candidates = candidates.with_for_update(skip_locked=True)
    claimed = db.session.execute(
        update(Webhook)
        .where(Webhook.id.in_(candidates.scalar_subquery()), *_due_conditions(now))
        .values(
            lease_id=lease_id,
            lease_expires_at=now + timedelta(seconds=lease_seconds()),
            lease_attempt=Webhook.trigger_attempts + 1,
            next_trigger_at=None,
            trigger_attempts=0,
        )
        .returning(Webhook.id, Webhook.lease_attempt)
        .execution_options(synchronize_session=False)
    ).all()
    if not claimed:
        db.session.commit()
        return []
    attempts = dict(claimed)
    rows = db.session.execute(select(Webhook).where(Webhook.id.in_(attempts)).execution_options(populate_existing=True))
    claims = [
        Claim(
            webhook=snapshot(webhook),
            lease_id=lease_id,
            attempt=attempts[webhook.id],
            api_url=webhook.last_event_api_url,
            claimed_at=now,
        )
        for webhook in rows.scalars()
    ]
    db.session.commit()
    return claims


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


def record_attempt(webhook_id: str, number: int, call: PreparedCall, result: AttemptResult, kind: str) -> int | None:
    """Store the attempt and count it in the statistics; None if the webhook was deleted meanwhile."""
    info = {
        "status": result.status,
        "duration_ms": round(result.duration_ms, 1),
        "excerpt": result.excerpt,
        "error": result.error,
    }
    outcome = (
        {
            "success_count": Webhook.success_count + 1,
            "failures_since_last_success": 0,
            "last_success_at": result.started_at,
        }
        if result.success
        else {
            "failure_count": Webhook.failure_count + 1,
            "failures_since_last_success": Webhook.failures_since_last_success + 1,
            "last_failure_at": result.started_at,
        }
    )
    counted = db.session.execute(
        update(Webhook)
        .where(Webhook.id == webhook_id)
        .values(triggers_count=Webhook.triggers_count + 1, **outcome)
        .execution_options(synchronize_session=False)
    )
    if counted.rowcount == 0:
        db.session.rollback()
        return None
    attempt = Attempt(
        webhook_id=webhook_id,
        kind=kind,
        number=number,
        started_at=result.started_at,
        duration_ms=result.duration_ms,
        success=result.success,
        request_method=call.method,
        request_url=call.url,
        request_headers=call.logged_headers,
        request_body=call.body.decode() if call.body is not None else None,
        response_status=result.status,
        response_headers=result.headers or None,
        response_body=result.body,
        response_truncated=result.truncated,
        error=result.error,
    )
    db.session.add(attempt)
    db.session.flush()
    column = Webhook.last_success_info if result.success else Webhook.last_failure_info
    db.session.execute(
        update(Webhook)
        .where(Webhook.id == webhook_id)
        .values({column: {**info, "attempt_id": attempt.id}})
        .execution_options(synchronize_session=False)
    )
    return attempt.id


def complete(claim: Claim, call: PreparedCall, result: AttemptResult) -> datetime | None:
    """Record the attempt, release the lease and decide what comes next.

    Returns the due time of a scheduled retry, if any. Past ``WEBHOOK_MAX_ATTEMPTS`` failures the
    webhook becomes Out of order; a trigger pending meanwhile waits for re-enabling.
    """
    webhook_id = claim.webhook.id
    if record_attempt(webhook_id, claim.attempt, call, result, "trigger") is None:
        return None
    retry_at = None
    values: dict = {"lease_id": None, "lease_expires_at": None, "lease_attempt": 0}
    if not result.success:
        if claim.attempt >= int(current_app.config["WEBHOOK_MAX_ATTEMPTS"]):
            values["out_of_order"] = True
        else:
            retry_at = utcnow() + timedelta(seconds=retry_delay(claim.attempt))
            # Events that arrived during the attempt fold into the retry.
            values["next_trigger_at"] = case((Webhook.active.is_(True), retry_at), else_=None)
            values["trigger_attempts"] = claim.attempt
    db.session.execute(
        update(Webhook)
        .where(Webhook.id == webhook_id, Webhook.lease_id == claim.lease_id)
        .values(values)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return retry_at


def reclaim_expired() -> int:
    """Turn attempts whose lease ran out (a worker died) back into due triggers; returns how many."""
    now = utcnow()
    result = db.session.execute(
        update(Webhook)
        .where(Webhook.lease_expires_at < now)
        .values(
            lease_id=None,
            lease_expires_at=None,
            lease_attempt=0,
            # SET expressions see the old row: keep a pending trigger's count, else resume the lost one's.
            trigger_attempts=case(
                (Webhook.next_trigger_at.is_(None), Webhook.lease_attempt - 1), else_=Webhook.trigger_attempts
            ),
            next_trigger_at=func.coalesce(Webhook.next_trigger_at, now),
        )
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return result.rowcount


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
