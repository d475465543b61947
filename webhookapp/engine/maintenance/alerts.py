"""Alerts (docs/architecture.md, "Alerts"): the users of an account are told by mail when one of
its webhooks goes Out of order, or is disabled because its handler answered 410 Gone, and again
when it recovers (its next successful delivery).

One message per change of state, never one per attempt: ``webhooks.alerted_out_of_order`` holds
what the users were last told, and a scan (a worker's cron job, every ``WEBHOOK_ALERT_INTERVAL``
seconds) reads the few rows where it differs from ``out_of_order`` through a partial index. A
webhook put back with *Enable* is told about once it delivers again. One worker scans at a time
(a maintenance lease), and a webhook is marked only after its message was sent: a mail server
that is down, or a worker that dies mid-scan, delays a message, and at worst repeats one.
"""

from __future__ import annotations

import logging
from datetime import datetime

from flask import current_app
from sqlalchemy import select, update

from webhookapp.engine import maintenance
from webhookapp.infra import mail
from webhookapp.infra.extensions import db
from webhookapp.models import Actor, Product, User, Webhook, audit

log = logging.getLogger(__name__)

LEASE = "alerts"
LEASE_SECONDS = 120
BATCH = 100


def _recovered(webhook: Webhook) -> bool:
    """Delivering again since it was Out of order: a success came after the failures."""
    return not webhook.out_of_order and webhook.failures_since_last_success == 0 and webhook.last_success_at is not None


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "an unknown time"


def site_url() -> str:
    """The pages' root for links: ``WEBHOOK_SITE_URL``, else the API URL's site, else local."""
    config = current_app.config
    configured = config.get("WEBHOOK_SITE_URL") or ""
    if configured:
        return configured.rstrip("/")
    api_url = str(config.get("WEBHOOK_API_URL") or "")
    if api_url.startswith(("http://", "https://")) and "/public/v1" in api_url:
        return api_url.split("/public/v1", 1)[0]
    return "http://127.0.0.1:5000"


def message(webhook: Webhook, product: Product | None) -> tuple[str, str]:
    """The subject and body of the alert ``webhook``'s state calls for."""
    page = f"{site_url()}/webhooks/{webhook.id}"
    on = f" on {product.name} ({product.id})" if product else ""
    if webhook.out_of_order and webhook.disabled_reason:
        return _disabled_message(webhook, on, page)
    if webhook.out_of_order:
        failure = webhook.last_failure_info or {}
        reason = f"got HTTP {failure['status']}" if failure.get("status") else "failed"
        if failure.get("error"):
            reason += f" ({failure['error']})"
        lines = [
            f"Your webhook “{webhook.label}” ({webhook.id}){on} is out of order: its last "
            f"{current_app.config['WEBHOOK_MAX_ATTEMPTS']} attempts failed, so nothing is sent to "
            f"{webhook.external_url} until it is fixed. Events still count.",
            "",
            f"The last attempt, at {_when(webhook.last_failure_at)}, {reason}.",
        ]
        if failure.get("attempt_id"):
            lines.append(f"See it: {page}/attempts/{failure['attempt_id']}")
        lines += ["", "Fix the handler, then use Retry now on the webhook's page (or Enable, to wait for the "
                  "next event):", page]  # fmt: skip
        return f"Webhook out of order: {webhook.label} ({webhook.id})", "\n".join(lines) + "\n"
    success = webhook.last_success_info or {}
    answer = f"answered HTTP {success['status']}" if success.get("status") else "answered"
    body = (
        f"Your webhook “{webhook.label}” ({webhook.id}){on} delivers again: the handler {answer} at "
        f"{_when(webhook.last_success_at)}.\n\n{page}\n"
    )
    return f"Webhook recovered: {webhook.label} ({webhook.id})", body


def _disabled_message(webhook: Webhook, on: str, page: str) -> tuple[str, str]:
    """The alert for a webhook the engine disabled (its handler answered 410 Gone)."""
    failure = webhook.last_failure_info or {}
    lines = [
        f"Your webhook “{webhook.label}” ({webhook.id}){on} is disabled: {webhook.disabled_reason} at "
        f"{_when(webhook.last_failure_at)}, so nothing is sent to {webhook.external_url} and events are "
        "not counted.",
    ]
    if failure.get("attempt_id"):
        lines.append(f"See the attempt: {page}/attempts/{failure['attempt_id']}")
    lines += ["", "If the handler is back, or has moved, fix the Endpoint URL and Enable the webhook:", page]
    return f"Webhook disabled: {webhook.label} ({webhook.id})", "\n".join(lines) + "\n"


def send_alerts() -> int:
    """Send the alerts that are due and mark them told; returns how many were sent. Another
    worker scanning, or a mail server that refuses, leaves the rest for the next scan."""
    holder = maintenance.take_lease(LEASE, LEASE_SECONDS)
    if holder is None:
        return 0
    sent = 0
    try:
        due_rows = select(Webhook).where(Webhook.out_of_order != Webhook.alerted_out_of_order)  # ix_webhooks_alert_due
        due = db.session.scalars(due_rows.order_by(Webhook.id).limit(BATCH)).all()
        for webhook in due:
            if not webhook.out_of_order and not _recovered(webhook):
                continue  # enabled again, not yet delivering: told once it does
            recipients = list(db.session.scalars(select(User.email).where(User.account_id == webhook.account_id)))
            subject, body = message(webhook, db.session.get(Product, webhook.product_id))
            told = webhook.out_of_order
            webhook_id, account_id, label = webhook.id, webhook.account_id, webhook.label
            db.session.commit()  # no transaction held while the mail server answers
            if recipients:
                try:
                    mail.send(recipients, subject, body)
                except mail.MailError as exc:
                    log.warning("Could not send the alert for %s (%s); it is tried again.", webhook.id, exc)
                    break
            db.session.execute(update(Webhook).where(Webhook.id == webhook_id).values(alerted_out_of_order=told))
            if recipients:  # the mail went out: recorded with the mark that it was told
                audit.record(
                    Actor.system(), "alert.mailed", account_id=account_id, object_type="webhook", object_id=webhook_id,
                    object_label=label, changes={"out_of_order": {"after": told}, "recipients": {"after": recipients}},
                )  # fmt: skip
            db.session.commit()
            sent += 1
            if not maintenance.renew_lease(LEASE, holder, LEASE_SECONDS):
                return sent
    finally:
        db.session.rollback()
        maintenance.release_lease(LEASE, holder)
    return sent
