"""Database models in SQLAlchemy 2 typed style, one module per part of the schema.

Every webhook, token and delivery belongs to exactly one account; queries that serve a person or
a token always filter by that account.
"""

from webhookapp.models.accounts import DISTRIBUTOR, VENDOR, Account, ApiToken, Product, RecoveryCode, User
from webhookapp.models.audit import Actor, AuditEntry
from webhookapp.models.columns import UTCDateTime
from webhookapp.models.deliveries import (
    Attempt,
    AttemptHour,
    Backfill,
    DeletedWebhook,
    Event,
    EventFeed,
    MaintenanceLease,
    MatchSet,
    MatchSetWebhook,
)
from webhookapp.models.recovery import Recovery
from webhookapp.models.webhook import WEBHOOK_FILLFACTOR, Webhook, WebhookSearch, WizardDraft

__all__ = [
    "DISTRIBUTOR",
    "VENDOR",
    "WEBHOOK_FILLFACTOR",
    "Account",
    "Actor",
    "ApiToken",
    "Attempt",
    "AttemptHour",
    "AuditEntry",
    "Backfill",
    "DeletedWebhook",
    "Event",
    "EventFeed",
    "MaintenanceLease",
    "MatchSet",
    "MatchSetWebhook",
    "Product",
    "Recovery",
    "RecoveryCode",
    "UTCDateTime",
    "User",
    "Webhook",
    "WebhookSearch",
    "WizardDraft",
]
