"""What the live pages poll for (docs/architecture.md, "Live pages"): the state a page shows, read
in one indexed statement, and a version of it, so that a poll of an unchanged page is answered
304 without rendering anything."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from webhookapp.core.times import utcnow
from webhookapp.engine import triggers
from webhookapp.infra import templating
from webhookapp.infra.extensions import db
from webhookapp.models import Attempt, Webhook

# The columns the live regions show: a change in any of them is a new version.
STATE_COLUMNS = (
    "active", "out_of_order", "trigger_attempts", "next_trigger_at", "lease_id", "lease_attempt", "events_count",
    "trigger_now_count", "triggers_count", "success_count", "failure_count", "failures_since_last_success",
    "last_event_at", "last_success_at", "last_failure_at", "last_success_info", "last_failure_info", "modified_at",
    "retry_asked_at", "disabled_reason",
)  # fmt: skip

SOON = timedelta(seconds=30)
"""A trigger due within this long keeps a page polling fast: its attempt is about to show."""
FAST_MS = 1500
"""Milliseconds between polls while something moves: a change shows within about two seconds."""
QUIET_MS = 2000
"""The longest wait between polls of a quiet page: a change after a lull shows within about two
seconds too, and a 304 costs two indexed statements."""


@dataclass(frozen=True)
class Sending:
    """The attempt in flight: its number, when it started, and for how many seconds it has run."""

    attempt: int
    since: datetime
    seconds: int


def sending(webhook: Webhook, now: datetime | None = None) -> Sending | None:
    """The webhook's attempt in flight, or None. Its start is the lease's: a claim takes the lease
    for :func:`.triggers.lease_seconds` and sends at once (docs/architecture.md, "Trigger state")."""
    if not webhook.lease_id or webhook.lease_expires_at is None:
        return None
    now = now or utcnow()
    since = min(webhook.lease_expires_at - timedelta(seconds=triggers.lease_seconds()), now)
    return Sending(webhook.lease_attempt, since, int((now - since).total_seconds()))


def poll_after_ms(webhooks: list[Webhook], now: datetime | None = None) -> int:
    """The longest a page should wait before its next poll: short while an attempt is in flight
    or a trigger is about to fall due, longer on a quiet page."""
    now = now or utcnow()
    for webhook in webhooks:
        due = webhook.next_trigger_at
        if webhook.lease_id or (webhook.active and not webhook.out_of_order and due and due - now <= SOON):
            return FAST_MS
    return QUIET_MS


def state(webhook: Webhook) -> tuple[object, ...]:
    """What the live regions of one webhook show, as a tuple of its columns, and whether its next
    trigger is less than a minute away (shown with seconds then: :func:`.templating.format_due`)."""
    due = webhook.next_trigger_at
    soon = due is not None and abs(due - utcnow()) < templating.SOON
    return (webhook.id, *(getattr(webhook, name) for name in STATE_COLUMNS), soon)


def version(*parts: object) -> str:
    """A short digest of ``parts``: the ETag of a live answer."""
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:24]


def webhook_with_newest_attempt(account_id: str, webhook_id: str) -> tuple[Webhook, int | None] | None:
    """The account's webhook and the id of its newest attempt, in one statement (the attempt
    through the newest end of ``ix_attempts_webhook_started_id``); None for another account's.
    The account goes by id: a poll need not load it."""
    newest = (
        select(Attempt.id)
        .where(Attempt.webhook_id == Webhook.id)
        .order_by(Attempt.started_at.desc(), Attempt.id.desc())
        .limit(1)
        .correlate(Webhook)
        .scalar_subquery()
    )
    row = db.session.execute(
        select(Webhook, newest).where(Webhook.id == webhook_id, Webhook.account_id == account_id)
    ).first()
    return None if row is None else (row[0], row[1])


def own_webhooks(account_id: str, webhook_ids: list[str]) -> list[Webhook]:
    """Those of ``webhook_ids`` that are the account's, in one statement; others are left out."""
    if not webhook_ids:
        return []
    query = select(Webhook).where(Webhook.account_id == account_id, Webhook.id.in_(webhook_ids)).order_by(Webhook.id)
    return list(db.session.scalars(query))
