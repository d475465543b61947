"""Recover a time range (docs/architecture.md, "Recover"): start, cancel and read a webhook's
recoveries. The workers send them (:mod:`webhookapp.engine.recovery`); this is the web side's
part, which the details page and the API share."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from webhookapp.core.errors import ServiceError
from webhookapp.core.times import isoformat, utcnow
from webhookapp.engine import recovery as engine
from webhookapp.engine.recovery import selection
from webhookapp.engine.timing import RECOVER_REVIVE_AFTER
from webhookapp.infra.database import rowcount
from webhookapp.infra.extensions import db
from webhookapp.models import Recovery, Webhook
from webhookapp.models.recovery import CANCELLED, RUNNING
from webhookapp.services import audit

ALREADY_RUNNING = "A recovery of this webhook is running: wait for it to end or cancel it first."


def latest(webhook: Webhook) -> Recovery | None:
    """The webhook's newest recovery, running or not."""
    query = select(Recovery).where(Recovery.webhook_id == webhook.id).order_by(Recovery.id.desc()).limit(1)
    return db.session.scalar(query)


def get(webhook: Webhook, recovery_id: int) -> Recovery | None:
    """One of the webhook's recoveries; None for another webhook's."""
    return db.session.scalar(select(Recovery).where(Recovery.id == recovery_id, Recovery.webhook_id == webhook.id))


def start(webhook: Webhook, since: datetime, until: datetime | None = None) -> Recovery:
    """Start sending the webhook's failed triggers of ``[since, until)`` again (``until``: now,
    and never later than now) and record who asked.

    Raises :class:`ServiceError`: 400 for a disabled or validation webhook or an empty range,
    409 while another recovery of the webhook runs.
    """
    now = utcnow()
    until = min(until or now, now)
    if webhook.catalog_entry.kind != "event":
        raise ServiceError(400, "VAL_001", "A validation webhook has no triggers to recover: use Redeliver.")
    if not webhook.active:
        raise ServiceError(400, "VAL_001", "The webhook is disabled: enable it before recovering.")
    if since >= until:
        raise ServiceError(400, "VAL_001", "The start of the range must be before its end (and before now).")
    if latest_running(webhook) is not None:
        raise ServiceError(409, "REC_409", ALREADY_RUNNING)
    total = selection.count(webhook, since, until)
    recovery = Recovery(
        account_id=webhook.account_id, webhook_id=webhook.id, since=since, until=until, state=RUNNING, total=total,
        sent=0, succeeded=0, cursor_started_at=since, cursor_attempt_id=0, generation=0, next_at=now,
        lease_until=now + timedelta(seconds=RECOVER_REVIVE_AFTER), created_at=now,
    )  # fmt: skip
    db.session.add(recovery)
    audit.record_webhook(
        "webhook.recovery_started", webhook,
        {"since": {"after": isoformat(since)}, "until": {"after": isoformat(until)}, "total": {"after": total}},
    )  # fmt: skip
    try:
        db.session.commit()
    except IntegrityError:  # another start won the race: the database holds one running per webhook
        db.session.rollback()
        raise ServiceError(409, "REC_409", ALREADY_RUNNING) from None
    engine.start(recovery)
    return recovery


def latest_running(webhook: Webhook) -> Recovery | None:
    query = select(Recovery).where(Recovery.webhook_id == webhook.id, Recovery.state == RUNNING)
    return db.session.scalar(query)


def cancel(webhook: Webhook, recovery: Recovery) -> Recovery:
    """Stop a running recovery: a request in flight still ends and is recorded, no other starts.

    Raises :class:`ServiceError` 409 when it is no longer running.
    """
    stopped = db.session.execute(
        update(Recovery)
        .where(Recovery.id == recovery.id, Recovery.state == RUNNING)
        .values(state=CANCELLED, lease_until=None, finished_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if rowcount(stopped) == 0:
        db.session.rollback()
        raise ServiceError(409, "REC_409", "This recovery is not running any more.")
    db.session.refresh(recovery)
    audit.record_webhook(
        "webhook.recovery_cancelled", webhook,
        {"sent": {"after": recovery.sent}, "total": {"after": recovery.total}},
    )  # fmt: skip
    db.session.commit()
    return recovery
