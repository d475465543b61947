"""Attempts in flight (docs/architecture.md, "Trigger state"): claiming due triggers, releasing the
lease with the outcome (success, a retry, Out of order), and taking back leases that ran out or
that a stopping worker hands back. Multi-row writers lock webhook rows in id order."""

from __future__ import annotations

import functools
import secrets
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import JSON, ColumnElement, Update, and_, bindparam, case, false, func, literal, select, true, update

from webhookapp.core.times import utcnow
from webhookapp.engine.triggers.schedule import TABLE, asked_delay, due_conditions, lease_seconds, retry_delay
from webhookapp.engine.types import SNAPSHOT_COLUMNS, AttemptResult, Claim, Success, snapshot
from webhookapp.infra import metrics
from webhookapp.infra.database import rowcount
from webhookapp.infra.extensions import db
from webhookapp.models import Actor, UTCDateTime, Webhook, audit

# -- claim -----------------------------------------------------------------------------------


@functools.cache
def _claim_statement(of_given_webhooks: bool) -> Update:
    """The claim, built once: a delivery job claims many times a second, and building and keying a
    statement this size costs more than running it."""
    now = bindparam("now", type_=UTCDateTime())
    candidates = (
        select(TABLE.c.id)
        .where(*due_conditions(now))
        .order_by(TABLE.c.next_trigger_at, TABLE.c.id)
        .limit(bindparam("limit"))
        # SKIP LOCKED lets claimers on PostgreSQL pass each other.
        .with_for_update(skip_locked=True)
    )
    if of_given_webhooks:
        candidates = candidates.where(TABLE.c.id.in_(bindparam("webhook_ids", expanding=True)))
    # MATERIALIZED: PostgreSQL would otherwise re-run the subquery per row and claim past the limit.
    chosen = candidates.cte("chosen").prefix_with("MATERIALIZED")
    return (
        update(TABLE)
        # Joined by primary key (UPDATE … FROM chosen): each chosen row is one probe of pk_webhooks.
        # The repeated conditions make the UPDATE itself the arbiter wherever a snapshot is stale;
        # as one CASE they are checked on the rows found, never used to find them. As plain terms
        # they let PostgreSQL reach the rows through ix_webhooks_due and match every due row
        # against every chosen one, which it does when its statistics say few are due
        # (docs/performance.md, "The claim's join").
        .where(TABLE.c.id == chosen.c.id, case((and_(*due_conditions(now)), true()), else_=false()))
        .values(
            lease_id=bindparam("lease_id"),
            lease_expires_at=bindparam("lease_expires_at", type_=UTCDateTime()),
            lease_attempt=TABLE.c.trigger_attempts + 1,
            next_trigger_at=None,
            trigger_attempts=0,
            # A trigger's first claim names its message; its retries (and a reclaim) keep the name.
            trigger_message_id=func.coalesce(
                TABLE.c.trigger_message_id, literal("msg_") + TABLE.c.id + "_" + bindparam("lease_id")
            ),
        )
        .returning(
            *(TABLE.c[name] for name in SNAPSHOT_COLUMNS),
            TABLE.c.lease_attempt,
            TABLE.c.last_event_api_url,
            TABLE.c.trigger_traceparent,
            TABLE.c.trigger_message_id,
        )
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
        Claim(webhook=snapshot(row), lease_id=lease_id, attempt=row.lease_attempt, api_url=row.last_event_api_url,
              claimed_at=now, traceparent=row.trigger_traceparent, message_id=row.trigger_message_id)
        for row in claimed
    ]  # fmt: skip


# -- succeed, fail and schedule a retry, go out of order -------------------------------------


RELEASED_LEASE: dict[str, int | None] = {"lease_expires_at": None, "lease_attempt": 0, "lease_id": None}
"""A webhook's lease columns once no attempt is in flight: what every release writes, here and in
the SQL of :data:`webhookapp.engine.triggers.postgresql.SUCCEED`."""


def _ours() -> ColumnElement[bool]:
    """The lease is released only by the claim that holds it, so a late outcome after the sweeper
    has handed the trigger on changes nothing but the counts."""
    return TABLE.c.lease_id == bindparam("lease")


def _release() -> dict[str, Any]:
    ours = _ours()
    return {name: case((ours, released), else_=TABLE.c[name]) for name, released in RELEASED_LEASE.items()}


@functools.cache
def _succeed_statement() -> Update:
    """Count a success and release the lease if still ours: built once, run as an executemany.
    Twin: :data:`webhookapp.engine.triggers.postgresql.SUCCEED`."""
    return (
        update(TABLE)
        .where(TABLE.c.id == bindparam("webhook"))
        .values(
            triggers_count=TABLE.c.triggers_count + 1,
            success_count=TABLE.c.success_count + 1,
            attempts_kept=TABLE.c.attempts_kept + 1,
            failures_since_last_success=0,
            last_success_at=bindparam("at", type_=UTCDateTime()),
            last_success_info=bindparam("info", type_=JSON()),
            # The trigger is done: the next one is a new message (a new ``webhook-id``).
            trigger_message_id=case((_ours(), None), else_=TABLE.c.trigger_message_id),
            **_release(),
        )
    )


def succeed(successes: list[Success]) -> None:
    """Successful attempts of distinct webhooks, in the caller's transaction: count each and
    release its lease if still ours. Rows are written in id order."""
    if successes:
        ordered = sorted(successes, key=lambda item: item.webhook_id)
        params = [
            {"webhook": item.webhook_id, "lease": item.lease_id, "at": item.started_at, "info": item.summary}
            for item in ordered
        ]
        db.session.execute(_succeed_statement(), params)


def finish(claim: Claim, result: AttemptResult) -> datetime | None:
    """Release the lease of an attempt already counted, in the caller's transaction, and decide
    what comes next. Returns the due time of a scheduled retry, if any.

    A failure schedules a retry after :func:`retry_delay`, or when a 429 or 503 answer's
    ``Retry-After`` asks (:func:`.schedule.asked_delay`); past ``WEBHOOK_MAX_ATTEMPTS`` failures
    the webhook goes Out of order, and a trigger pending meanwhile waits for re-enabling. A 410
    Gone disables the webhook at once (:func:`_gone`). Events that arrived during the attempt
    fold into the retry.

    Only failures come here with a status that asks something: successes of a busy worker are
    recorded in batches (:func:`.succeed` and its PostgreSQL twin), failures always one by one.
    """
    if result.status == GONE and not result.success and _gone(claim):
        return None
    retry_at = None
    values: dict[str, Any] = dict(RELEASED_LEASE)
    if result.success:
        values["trigger_message_id"] = None  # the trigger is done; the next is a new message
    else:
        if claim.attempt >= int(current_app.config["WEBHOOK_MAX_ATTEMPTS"]):
            values["out_of_order"] = True
            values["trigger_message_id"] = None  # given up: what is sent after re-enabling is new
        else:
            now = utcnow()
            asked = asked_delay(result.status, result.headers, now)
            retry_at = now + timedelta(seconds=retry_delay(claim.attempt) if asked is None else asked)
            values["next_trigger_at"] = case((Webhook.active.is_(True), retry_at), else_=None)
            values["trigger_attempts"] = claim.attempt
            values["retry_asked_at"] = None if asked is None else retry_at
    released = db.session.execute(
        update(Webhook)
        .where(Webhook.id == claim.webhook.id, Webhook.lease_id == claim.lease_id)
        .values(values)
        .execution_options(synchronize_session=False)
    )
    if not result.success and rowcount(released):  # the transition happened: the lease was still ours
        (metrics.RETRIES_SCHEDULED if retry_at else metrics.WENT_OUT_OF_ORDER).inc()
    return retry_at


GONE = 410
GONE_REASON = "the handler answered 410 Gone"
"""Why a webhook whose handler answered 410 Gone was disabled, as its page and the alert say."""


def _gone(claim: Claim) -> bool:
    """The handler answered 410 Gone: disable the webhook at once, if it is still enabled and the
    lease still ours, and record it in the audit trail as the system's action. True if it was.

    ``out_of_order`` is set too, so that the alert scan tells the account's users as it does for
    Out of order (:mod:`webhookapp.engine.maintenance.alerts`); enabling clears both."""
    disabled = db.session.execute(
        update(Webhook)
        .where(Webhook.id == claim.webhook.id, Webhook.lease_id == claim.lease_id, Webhook.active.is_(True))
        .values(
            **RELEASED_LEASE, active=False, out_of_order=True, next_trigger_at=None, trigger_attempts=0,
            disabled_reason=GONE_REASON, modified_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )  # fmt: skip
    if not rowcount(disabled):
        return False
    webhook = claim.webhook
    audit.record(
        Actor.system(), "webhook.disabled", account_id=webhook.account_id, object_type="webhook",
        object_id=webhook.id, object_label=webhook.label,
        changes={"active": {"before": True, "after": False}, "reason": {"after": GONE_REASON}},
    )  # fmt: skip
    metrics.DISABLED_GONE.inc()
    return True


# -- reclaim an expired lease ----------------------------------------------------------------


def _back_to_pending(now: datetime) -> dict[str, Any]:
    """An attempt in flight that will not end (its lease ran out, or its worker stops) becomes a
    pending trigger again, due at once: its lease goes, and the failed attempts before it count."""
    return {
        **RELEASED_LEASE,
        # SET expressions see the old row: keep a pending trigger's count, else resume the lost one's.
        "trigger_attempts": case(
            (TABLE.c.next_trigger_at.is_(None), TABLE.c.lease_attempt - 1), else_=TABLE.c.trigger_attempts
        ),
        # A disabled webhook gets no trigger back: disabled webhooks send nothing.
        "next_trigger_at": case((TABLE.c.active.is_(True), func.coalesce(TABLE.c.next_trigger_at, now)), else_=None),
    }


def reclaim_expired() -> int:
    """Turn attempts whose lease ran out (a worker died) back into due triggers, and commit;
    returns how many. A disabled webhook gets no trigger back: disabled webhooks send nothing.
    """
    now = utcnow()
    expired = (
        select(TABLE.c.id)
        .where(TABLE.c.lease_expires_at < now)
        .order_by(TABLE.c.id)
        .with_for_update(skip_locked=True)
        .cte("expired")
        .prefix_with("MATERIALIZED")
    )
    reclaimed = db.session.execute(
        update(TABLE)
        .where(TABLE.c.id.in_(select(expired.c.id)), TABLE.c.lease_expires_at < now)
        .values(_back_to_pending(now))
        .returning(TABLE.c.id)  # counted from RETURNING: SQLite reports no rowcount for WITH … UPDATE
    ).all()
    db.session.commit()
    return len(reclaimed)


def hand_back(claims: list[Claim]) -> int:
    """Give claimed triggers that were never sent back to the pending state, due now, as the
    sweeper would once their lease ran out (a stopping worker; docs/architecture.md, "Reliability").
    Only leases still held change; commits and returns how many did. Rows are written in id order."""
    if not claims:
        return 0
    now = utcnow()
    statement = update(TABLE).where(TABLE.c.id == bindparam("b_id"), _ours()).values(_back_to_pending(now))
    rows = [{"b_id": claim.webhook.id, "lease": claim.lease_id} for claim in claims]
    result = db.session.execute(statement, sorted(rows, key=lambda row: row["b_id"]))
    db.session.commit()
    return rowcount(result)
