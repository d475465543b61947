"""Outcomes of attempts (DESIGN §6): the attempt log, the statistics, and what comes next.

Statistics are SQL increments, never read-modify-write, so concurrent workers lose nothing. The
lease is released only by the claim that holds it, so a late completion after the sweeper has
handed the trigger on changes nothing but the counts.
"""

from __future__ import annotations

import functools
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import JSON, Update, bindparam, case, insert, update
from sqlalchemy.exc import IntegrityError

from ..extensions import db, on_postgresql
from ..models import Attempt, UTCDateTime, Webhook, utcnow
from . import outcomes_postgresql
from .sender import AttemptResult, PreparedCall
from .triggers import Claim, retry_delay


def _attempt_row(webhook_id: str, number: int, call: PreparedCall, result: AttemptResult, kind: str) -> dict[str, Any]:
    return {
        "webhook_id": webhook_id,
        "kind": kind,
        "number": number,
        "started_at": result.started_at,
        "duration_ms": result.duration_ms,
        "success": result.success,
        "request_method": call.method,
        "request_url": call.url,
        "request_headers": call.logged_headers,
        "request_body": call.body.decode() if call.body is not None else None,
        "response_status": result.status,
        "response_headers": result.headers or None,
        "response_body": result.body,
        "response_truncated": result.truncated,
        "error": result.error,
    }


def _info(result: AttemptResult, attempt_id: int) -> dict[str, Any]:
    return {
        "status": result.status,
        "duration_ms": round(result.duration_ms, 1),
        "excerpt": result.excerpt,
        "error": result.error,
        "attempt_id": attempt_id,
    }


def record_attempt(webhook_id: str, number: int, call: PreparedCall, result: AttemptResult, kind: str) -> int | None:
    """Store the attempt and count it in the statistics; None if the webhook was deleted meanwhile."""
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
    attempt = Attempt(**_attempt_row(webhook_id, number, call, result, kind))
    db.session.add(attempt)
    db.session.flush()
    column = Webhook.last_success_info if result.success else Webhook.last_failure_info
    db.session.execute(
        update(Webhook)
        .where(Webhook.id == webhook_id)
        .values({column: _info(result, attempt.id)})
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


def _insert_attempts(rows: list[dict[str, Any]]) -> dict[str, int]:
    """Insert attempt rows of distinct webhooks; returns each webhook's new attempt id, matched
    by webhook rather than by row order, which SQLite does not promise."""
    attempts = Attempt.__table__
    return dict(db.session.execute(insert(attempts).returning(attempts.c.webhook_id, attempts.c.id), rows).all())


@functools.cache
def _success_statement() -> Update:
    """Count a success and release the lease if still ours: built once, run as an executemany."""
    table = Webhook.__table__
    ours = table.c.lease_id == bindparam("lease")
    return (
        update(table)
        .where(table.c.id == bindparam("webhook"))
        .values(
            triggers_count=table.c.triggers_count + 1,
            success_count=table.c.success_count + 1,
            failures_since_last_success=0,
            last_success_at=bindparam("at", type_=UTCDateTime()),
            last_success_info=bindparam("info", type_=JSON()),
            lease_expires_at=case((ours, None), else_=table.c.lease_expires_at),
            lease_attempt=case((ours, 0), else_=table.c.lease_attempt),
            lease_id=case((ours, None), else_=table.c.lease_id),
        )
    )


def complete_successes(items: list[tuple[Claim, PreparedCall, AttemptResult]]) -> None:
    """:func:`complete` for many successful attempts of distinct webhooks, in one commit.

    The hot path of a busy worker. On PostgreSQL one statement does it all
    (:mod:`.outcomes_postgresql`). Elsewhere attempts are inserted in one statement and the
    webhooks updated in one executemany in id order (the order every multi-row writer locks in);
    if a webhook was deleted meanwhile, the batch falls back to one attempt at a time.
    """
    if not items:
        return
    if on_postgresql():
        outcomes_postgresql.complete_successes(items)
        return
    items = sorted(items, key=lambda item: item[0].webhook.id)
    rows = [_attempt_row(claim.webhook.id, claim.attempt, call, result, "trigger") for claim, call, result in items]
    try:
        ids = _insert_attempts(rows)
    except IntegrityError:
        db.session.rollback()
        for claim, call, result in items:
            complete(claim, call, result)
        return
    db.session.execute(
        _success_statement(),
        [
            {
                "webhook": claim.webhook.id,
                "lease": claim.lease_id,
                "at": result.started_at,
                "info": _info(result, ids[claim.webhook.id]),
            }
            for claim, _call, result in items
        ],
    )
    db.session.commit()
