"""Outcomes of attempts (docs/architecture.md, "Data flow"): the attempt log, the statistics, and
the trigger transition that follows (:mod:`.triggers`).

Statistics are SQL increments, never read-modify-write, so concurrent workers lose nothing.
Successes of a busy worker are recorded in batches: on PostgreSQL by one statement
(:mod:`webhookapp.engine.outcomes.postgresql`), elsewhere by :func:`complete_successes_portable`.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import insert, select, update

from webhookapp.engine import triggers
from webhookapp.engine.outcomes import postgresql as outcomes_postgresql
from webhookapp.engine.types import AttemptResult, Claim, Finished, PreparedCall, Success
from webhookapp.infra.database import rowcount
from webhookapp.infra.extensions import db, on_postgresql
from webhookapp.models import Attempt, Webhook

GONE_ERROR = f"{triggers.GONE_REASON[0].upper()}{triggers.GONE_REASON[1:]}: the webhook is disabled."
"""The error of an attempt whose 410 Gone disabled its webhook."""


def attempt_row(
    webhook_id: str, number: int, call: PreparedCall, result: AttemptResult, kind: str, redelivery_of: int | None = None
) -> dict[str, Any]:
    """The ``attempts`` row of one attempt, by column name (``redelivery_of``: the attempt that
    Redeliver sent again)."""
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
        "error_detail": result.error_detail,
        "redelivery_of": redelivery_of,
    }


def summary(result: AttemptResult, attempt_id: int) -> dict[str, Any]:
    """The last-success or last-failure summary kept on the webhook, which outlives the attempt."""
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
        .values(triggers_count=Webhook.triggers_count + 1, attempts_kept=Webhook.attempts_kept + 1, **outcome)
        .execution_options(synchronize_session=False)
    )
    if rowcount(counted) == 0:
        db.session.rollback()
        return None
    attempt = Attempt(**attempt_row(webhook_id, number, call, result, kind))
    db.session.add(attempt)
    db.session.flush()
    column = Webhook.last_success_info if result.success else Webhook.last_failure_info
    db.session.execute(
        update(Webhook)
        .where(Webhook.id == webhook_id)
        .values({column: summary(result, attempt.id)})
        .execution_options(synchronize_session=False)
    )
    return attempt.id


def record_redelivery(
    webhook_id: str, number: int, call: PreparedCall, result: AttemptResult, kind: str, redelivery_of: int
) -> Attempt | None:
    """Store a Redeliver attempt alone: no statistics, no summary, no trigger state; the caller
    commits. None if the webhook was deleted meanwhile (nothing is stored then).

    The attempt is inserted first and the webhook's stored-attempts count then raised, which
    locks its row until the caller commits (a deletion waits for it; so do events and claims of
    that webhook, for that short while); on SQLite the insert holds the write lock
    (docs/architecture.md, "Scale": every writer of attempts checks that the webhook exists, and
    counts what it stores).
    """
    attempt = Attempt(**attempt_row(webhook_id, number, call, result, kind, redelivery_of))
    db.session.add(attempt)
    db.session.flush()
    counted = db.session.execute(
        update(Webhook)
        .where(Webhook.id == webhook_id)
        .values(attempts_kept=Webhook.attempts_kept + 1)
        .execution_options(synchronize_session=False)
    )
    if rowcount(counted) == 0:
        db.session.rollback()
        return None
    return attempt


class Completed(NamedTuple):
    """A recorded attempt (``attempt_id`` None: its webhook was deleted meanwhile) and the due
    time of its retry, if one was scheduled."""

    attempt_id: int | None
    retry_at: datetime | None


def complete(claim: Claim, call: PreparedCall, result: AttemptResult) -> Completed:
    """Record the attempt, release the lease and decide what comes next (:func:`.triggers.finish`),
    in one commit. A 410 Gone, which disables the webhook, says so on the attempt."""
    if result.status == triggers.GONE and not result.success:
        result = dataclasses.replace(result, error=GONE_ERROR)
    attempt_id = record_attempt(claim.webhook.id, claim.attempt, call, result, "trigger")
    if attempt_id is None:
        return Completed(None, None)
    retry_at = triggers.finish(claim, result)
    db.session.commit()
    return Completed(attempt_id, retry_at)


def complete_successes(items: list[Finished]) -> dict[str, int]:
    """:func:`complete` for many successful attempts of distinct webhooks, in one commit: the hot
    path of a busy worker. Returns the new attempts' ids by webhook (a deleted webhook's has none)."""
    if not items:
        return {}
    if not on_postgresql():
        return complete_successes_portable(items)
    return outcomes_postgresql.complete_successes(
        [
            attempt_row(claim.webhook.id, claim.attempt, call, result, "trigger")
            | {"lease_id": claim.lease_id, "info_duration": round(result.duration_ms, 1), "excerpt": result.excerpt}
            for claim, call, result in items
        ]
    )


def _insert_attempts(rows: list[dict[str, Any]]) -> dict[str, int]:
    """Insert attempt rows of distinct webhooks; returns each webhook's new attempt id, matched
    by webhook rather than by row order, which SQLite does not promise."""
    attempts = Attempt.__table__
    return dict(db.session.execute(insert(attempts).returning(attempts.c.webhook_id, attempts.c.id), rows).all())


def complete_successes_portable(items: list[Finished]) -> dict[str, int]:
    """:func:`complete_successes` on any database: the attempts in one statement, the webhooks in
    one executemany (:func:`.triggers.succeed`). If a webhook was deleted meanwhile, the batch
    falls back to one attempt at a time (:func:`record_attempt` skips the deleted one)."""
    items = sorted(items, key=lambda item: item.claim.webhook.id)  # id order, as every multi-row writer
    rows = [attempt_row(claim.webhook.id, claim.attempt, call, result, "trigger") for claim, call, result in items]
    ids = _insert_attempts(rows)
    # SQLite holds the database's write lock from the insert on, so no deletion can come between
    # this check and the commit; a webhook deleted before it has its attempt taken back.
    existing = set(db.session.scalars(select(Webhook.id).where(Webhook.id.in_(list(ids)))))
    if len(existing) < len(ids):
        db.session.rollback()
        completed = {claim.webhook.id: complete(claim, call, result).attempt_id for claim, call, result in items}
        return {webhook_id: attempt_id for webhook_id, attempt_id in completed.items() if attempt_id is not None}
    triggers.succeed(
        [
            Success(
                webhook_id=claim.webhook.id,
                lease_id=claim.lease_id,
                started_at=result.started_at,
                summary=summary(result, ids[claim.webhook.id]),
            )
            for claim, _call, result in items
        ]
    )
    db.session.commit()
    return ids
