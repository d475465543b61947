"""Staged rotation of a webhook's JWT secret (docs/architecture.md, "Secret rotation").

*Generate next secret* keeps a second secret beside the current one; deliveries are still signed
with the current one, and the handler is changed to accept either. *Switch to next secret* makes
it current: every request signed from then on uses it, and the old one is gone. *Discard next
secret* drops it. So a handler never sees a request it cannot check.
"""

from __future__ import annotations

from webhookapp.core import rules
from webhookapp.core.times import utcnow
from webhookapp.infra.extensions import db
from webhookapp.models import Webhook
from webhookapp.services import audit
from webhookapp.services.webhook_changes import WebhookValidationError, generate_secret


def generate_next(webhook: Webhook, value: str | None = None) -> str:
    """Keep ``value`` (checked like any secret), or a new strong secret, as the next secret;
    replaces an earlier next secret. Returns it."""
    if value is None or not value.strip():
        value = generate_secret()
    else:
        try:
            value = rules.jwt_secret(value)
        except rules.RuleError as exc:
            raise WebhookValidationError({"jwt_secret_next": [str(exc)]}) from None
    webhook.jwt_secret_next = value
    webhook.modified_at = utcnow()
    audit.record_webhook("webhook.next_secret_generated", webhook, {"jwt_secret_next": {"changed": True}})
    db.session.commit()
    return value


def switch_to_next(webhook: Webhook) -> None:
    """Sign with the next secret from now on; the current one is dropped."""
    if webhook.jwt_secret_next is None:
        raise WebhookValidationError({"jwt_secret_next": ["There is no next secret to switch to: generate one first."]})
    webhook.jwt_secret, webhook.jwt_secret_next = webhook.jwt_secret_next, None
    webhook.modified_at = utcnow()
    secrets_changed = {"jwt_secret": {"changed": True}, "jwt_secret_next": {"changed": True}}
    audit.record_webhook("webhook.secret_switched", webhook, secrets_changed)
    db.session.commit()


def discard_next(webhook: Webhook) -> None:
    """Drop the next secret, if any; the current one stays in use."""
    if webhook.jwt_secret_next is not None:
        webhook.jwt_secret_next = None
        webhook.modified_at = utcnow()
        audit.record_webhook("webhook.next_secret_discarded", webhook, {"jwt_secret_next": {"changed": True}})
        db.session.commit()
