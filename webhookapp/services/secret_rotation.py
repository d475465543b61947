"""Staged rotation of a webhook's JWT secret (docs/architecture.md, "Secret rotation").

*Generate next secret* keeps a second secret beside the current one; deliveries are still signed
with the current one, and the handler is changed to accept either. *Switch to next secret* makes
it current: every request signed from then on uses it, and the old one is gone. *Discard next
secret* drops it. So a handler never sees a request it cannot check.

The next secret is always in the form of the webhook's signature format (``whsec_`` for
Standard Webhooks). A change of format is staged the same way (docs/architecture.md, "Signature
formats"): Switch completes it, Discard cancels it.
"""

from __future__ import annotations

from webhookapp.core import rules
from webhookapp.core.times import utcnow
from webhookapp.infra.extensions import db
from webhookapp.models import Webhook
from webhookapp.services import audit
from webhookapp.services.webhook_changes import WebhookValidationError, generate_secret, other_format


def generate_next(webhook: Webhook, value: str | None = None) -> str:
    """Keep ``value`` (checked like any secret), or a new strong secret, as the next secret;
    replaces an earlier next secret. Returns it."""
    if value is None or not value.strip():
        value = generate_secret(webhook.signature_format)
    else:
        try:
            value = rules.secret_for(webhook.signature_format)(value)
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
    webhook.signature_switch_pending = False  # a staged change of format is complete
    webhook.modified_at = utcnow()
    secrets_changed = {"jwt_secret": {"changed": True}, "jwt_secret_next": {"changed": True}}
    audit.record_webhook("webhook.secret_switched", webhook, secrets_changed)
    db.session.commit()


def discard_next(webhook: Webhook) -> None:
    """Drop the next secret, if any; the current one stays in use (in its own format: a staged
    change of format is cancelled)."""
    if webhook.jwt_secret_next is not None:
        webhook.jwt_secret_next = None
        changes: dict[str, dict[str, object]] = {"jwt_secret_next": {"changed": True}}
        if webhook.signature_switch_pending:
            before = webhook.signature_format
            webhook.signature_format, webhook.signature_switch_pending = other_format(before), False
            changes["signature_format"] = {"before": before, "after": webhook.signature_format}
        webhook.modified_at = utcnow()
        audit.record_webhook("webhook.next_secret_discarded", webhook, changes)
        db.session.commit()
