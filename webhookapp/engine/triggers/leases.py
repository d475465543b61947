"""Attempts in flight (docs/architecture.md, "Trigger state"): releasing the lease with the
outcome (success, a retry, Out of order), and taking back leases that ran out or that a stopping
worker hands back; the claim that takes them is :mod:`.claims`. Multi-row writers lock webhook
rows in id order."""

from __future__ import annotations

import functools
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import (
    JSON,
    ColumnElement,
    Update,
    bindparam,
    case,
    func,
    select,
    update,
)

from webhookapp.core.times import utcnow
from webhookapp.engine.triggers.schedule import TABLE, asked_delay, retry_delay
from webhookapp.engine.types import AttemptResult, Claim, Success
from webhookapp.infra import metrics
from webhookapp.infra.database import rowcount
from webhookapp.infra.extensions import db
from webhookapp.models import Actor, UTCDateTime, Webhook, audit

# -- succeed, fail and schedule a retry, go out of order -------------------------------------


END_OF_TRIGGER: dict[str, Any] = {"trigger_message_id": None, "trigger_serial": Webhook.trigger_serial + 1}
"""What a trigger's end writes (success, given up, dropped, 410 Gone): the next trigger is a new
message, named from the new serial by its first claim."""

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
            trigger_serial=case((_ours(), TABLE.c.trigger_serial + 1), else_=TABLE.c.trigger_serial),
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
        values.update(END_OF_TRIGGER)  # the trigger is done; the next is a new message
    else:
        if claim.attempt >= int(current_app.config["WEBHOOK_MAX_ATTEMPTS"]):
            values["out_of_order"] = True
            values.update(END_OF_TRIGGER)  # given up: what is sent after re-enabling is new
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
            **RELEASED_LEASE, **END_OF_TRIGGER, active=False, out_of_order=True, next_trigger_at=None,
            trigger_attempts=0, disabled_reason=GONE_REASON, modified_at=utcnow(),
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
