"""Webhook lifecycle: create, update, enable/disable, delete, and the account-scoped queries.

The wizard, the edit page and the API all land here, so the rules of a webhook (its type from
the catalog, its fields from ``rules``) are checked in one place whatever the caller already
checked. Trigger state changes go through ``engine.triggers``.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import delete

from webhookapp.core import catalog, rules
from webhookapp.core.errors import ServiceError
from webhookapp.core.ids import WEBHOOK_GROUPS, new_id
from webhookapp.core.times import utcnow
from webhookapp.engine import dispatch, signing, triggers
from webhookapp.engine.transport import client_tls
from webhookapp.infra.extensions import db
from webhookapp.models import Account, DeletedWebhook, Product, Webhook, WebhookSearch, tenancy
from webhookapp.services import audit

FIELD_NAMES = {"type_key": "type"}  # a field's name here → its name in the API


class WebhookValidationError(ServiceError):
    """Input that breaks one or more rules: ``errors`` maps a field name to its messages, for
    forms; ``messages`` lists them as ``field: message``, with the API's field names."""

    def __init__(self, fields: dict[str, list[str]]):
        super().__init__(
            400,
            "VAL_001",
            *(f"{FIELD_NAMES.get(name, name)}: {message}" for name, messages in fields.items() for message in messages),
        )
        self.errors = fields


def generate_secret(signature_format: str = "jwt") -> str:
    """A strong secret for ``signature_format``: for the JWT 256 random bits as URL-safe text, for
    Standard Webhooks the ``whsec_`` form of 32 random bytes."""
    if signature_format == "standard":
        return signing.new_standard_secret()
    return secrets.token_urlsafe(32)


def other_format(signature_format: str) -> str:
    return "jwt" if signature_format == "standard" else "standard"


def current_secret_format(webhook: Webhook) -> str:
    """The format the current secret signs in: the webhook's, or the old one while a change of
    format waits for Switch to next secret."""
    fmt = webhook.signature_format
    return other_format(fmt) if webhook.signature_switch_pending else fmt


def type_choices(account: Account, product: Product | None) -> list[tuple[catalog.WebhookType, str | None]]:
    """Every catalog row with the reason it is unavailable to this account and product (or None)."""
    capabilities = product.capabilities if product else set()
    return [
        (entry, catalog.unavailable_reason(entry, is_vendor=account.is_vendor, capabilities=capabilities))
        for entry in catalog.CATALOG
    ]


def check_type(account: Account, product: Product | None, type_key: str | None) -> catalog.WebhookType:
    """The catalog row for ``type_key`` if this account may use it on this product."""
    entry = catalog.by_key(type_key or "")
    if entry is None:
        raise rules.RuleError("Choose one of the listed types.")
    capabilities = product.capabilities if product else set()
    reason = catalog.unavailable_reason(entry, is_vendor=account.is_vendor, capabilities=capabilities)
    if reason:
        raise rules.RuleError(f"{entry.label}: {reason}")
    return entry


def _clean(fields: Mapping[str, Any], errors: dict[str, list[str]], secret_format: str = "jwt") -> dict[str, Any]:
    """Apply the field rules to every field present in ``fields`` (a secret's for
    ``secret_format``); collect messages in ``errors``."""
    field_rules: dict[str, Callable[[Any], Any]] = {
        "label": rules.label,
        "description": rules.description,
        "external_url": rules.external_url,
        "signature_format": rules.signature_format,
        "jwt_secret": rules.secret_for(secret_format),
        "http_method": rules.http_method,
        "headers": rules.headers,
        "data": rules.data_object,
    }
    cleaned: dict[str, Any] = {}
    for name, rule in field_rules.items():
        if name in fields:
            try:
                cleaned[name] = rule(fields[name])
            except rules.RuleError as exc:
                errors.setdefault(name, []).append(str(exc))
    if "active" in fields:
        if isinstance(fields["active"], bool):
            cleaned["active"] = fields["active"]
        else:
            errors.setdefault("active", []).append("Enabled must be true or false.")
    return cleaned


TLS_FIELDS = ("tls_client_cert", "tls_client_key", "tls_ca_bundle")


def _pem(value: str | None) -> str | None:
    """A PEM field as stored: stripped, None when empty."""
    return (value or "").strip() or None


def _clean_tls(webhook: Webhook | None, fields: Mapping[str, Any], errors: dict[str, list[str]]) -> dict[str, Any]:
    """The client certificate, key and CA bundle to set (docs/handlers.md, "Client certificates").

    On update an empty key keeps the stored one and an emptied certificate removes both. What
    changed is checked as a whole (:func:`client_tls.check`): an expired or malformed certificate,
    or a key that does not match it, is refused with a message on its field."""
    if not any(name in fields for name in TLS_FIELDS):
        return {}
    for name in TLS_FIELDS:
        if fields.get(name) is not None and not isinstance(fields[name], str):
            errors.setdefault(name, []).append("Must be PEM text.")
    if any(name in errors for name in TLS_FIELDS):
        return {}
    stored = (webhook.tls_client_cert, webhook.tls_client_key, webhook.tls_ca_bundle) if webhook else (None, None, None)
    cert = _pem(fields["tls_client_cert"]) if "tls_client_cert" in fields else stored[0]
    key = _pem(fields.get("tls_client_key")) or (stored[1] if cert else None)
    ca = _pem(fields["tls_ca_bundle"]) if "tls_ca_bundle" in fields else stored[2]
    wanted = (cert, key, ca)
    if wanted == stored:
        return {}  # unchanged: a stored certificate that expired since does not block other edits
    for name, message in client_tls.check(cert, key, ca).items():
        errors.setdefault(name, []).append(message)
    return dict(zip(TLS_FIELDS, wanted, strict=True))


def create_webhook(account: Account, fields: Mapping[str, Any]) -> Webhook:
    """Validate ``fields`` and create the webhook in one transaction.

    ``fields``: label, description, active, product_id, type_key, http_method, external_url,
    signature_format (``jwt`` when absent), jwt_secret (generated in that format's form when
    empty), headers, data (kept only for POST).
    """
    fields = dict(fields)
    fields.setdefault("signature_format", "jwt")
    errors: dict[str, list[str]] = {}
    try:
        signature_format = rules.signature_format(fields["signature_format"])
    except rules.RuleError:
        signature_format = "jwt"  # the message comes from _clean
    if not (fields.get("jwt_secret") or "").strip():
        fields["jwt_secret"] = generate_secret(signature_format)
    for required in ("label", "external_url", "http_method"):
        fields.setdefault(required, None)
    cleaned = _clean(fields, errors, signature_format)
    tls = _clean_tls(None, fields, errors)
    product = tenancy.usable_product(account, fields.get("product_id"))
    if product is None:
        errors["product_id"] = ["Choose one of the products available to your account."]
    try:
        entry = check_type(account, product, fields.get("type_key"))
    except rules.RuleError as exc:
        errors["type_key"] = [str(exc)]
    if errors or product is None:  # no product is an error above
        raise WebhookValidationError(errors)
    if cleaned["http_method"] != "POST":
        cleaned["data"] = {}
    now = utcnow()
    webhook = Webhook(
        id=_unused_webhook_id(),
        account_id=account.id,
        product_id=product.id,
        object_class=entry.object_class,
        type=entry.type,
        label=cleaned["label"],
        description=cleaned.get("description", ""),
        http_method=cleaned["http_method"],
        external_url=cleaned["external_url"],
        signature_format=cleaned["signature_format"],
        jwt_secret=cleaned["jwt_secret"],
        headers=cleaned.get("headers", {}),
        data=cleaned.get("data", {}),
        created_at=now,
        modified_at=now,
        **tls,  # after the id: the key is sealed for this row
    )
    triggers.set_enabled(webhook, cleaned.get("active", False))
    db.session.add(webhook)
    db.session.add(WebhookSearch(webhook_id=webhook.id, account_id=account.id, text=WebhookSearch.text_of(webhook)))
    audit.record_webhook("webhook.created", webhook, audit.created_changes(webhook))
    db.session.commit()
    return webhook


def update_webhook(webhook: Webhook, fields: Mapping[str, Any]) -> Webhook:
    """Apply a partial update; product and type are fixed at creation and may not change."""
    before = audit.webhook_values(webhook)
    _apply_update(webhook, _checked_update(webhook, fields))
    audit.record_webhook("webhook.updated", webhook, audit.webhook_changes(before, webhook))
    db.session.commit()
    _wake_if_due(webhook)
    return webhook


def _checked_update(webhook: Webhook, fields: Mapping[str, Any]) -> dict[str, Any]:
    """``fields`` through the rules, or a :class:`WebhookValidationError` with every problem."""
    errors: dict[str, list[str]] = {}
    if "product_id" in fields and fields["product_id"] != webhook.product_id:
        errors["product_id"] = ["The product cannot be changed after creation."]
    if "type_key" in fields and fields["type_key"] != webhook.catalog_entry.key:
        errors["type_key"] = ["The type cannot be changed after creation."]
    fields = dict(fields)
    if "jwt_secret" in fields and (
        not (fields["jwt_secret"] or "").strip() or fields["jwt_secret"] == webhook.jwt_secret
    ):
        del fields["jwt_secret"]  # empty, or the same (a client PUTs what it got): keep the current secret
    secret_format = current_secret_format(webhook)
    try:
        chosen = rules.signature_format(fields["signature_format"]) if "signature_format" in fields else None
    except rules.RuleError:
        chosen = None  # the message comes from _clean
    if chosen is not None and chosen != webhook.signature_format:
        secret_format = chosen  # a secret given with a change of format is the new format's
    cleaned = _clean(fields, errors, secret_format)
    cleaned.update(_clean_tls(webhook, fields, errors))
    if errors:
        raise WebhookValidationError(errors)
    return cleaned


def _change_format(webhook: Webhook, chosen: str, secret_given: bool) -> None:
    """Change the signature format (docs/architecture.md, "Signature formats"). With a new secret
    given, at once; otherwise staged: a new secret in the new format's form becomes the next
    secret and both formats are sent until Switch to next secret (a secret of one format never
    signs in the other). Changing back before the switch cancels it."""
    if chosen == webhook.signature_format:
        return
    webhook.signature_format = chosen
    if secret_given or webhook.signature_switch_pending:
        webhook.signature_switch_pending = False
        webhook.jwt_secret_next = None
    else:
        webhook.signature_switch_pending = True
        webhook.jwt_secret_next = generate_secret(chosen)


def _apply_update(webhook: Webhook, cleaned: dict[str, Any]) -> None:
    """Set checked fields on the webhook, its trigger and its search text, uncommitted."""
    enabled = cleaned.pop("active", webhook.active)
    if "signature_format" in cleaned:
        _change_format(webhook, cleaned.pop("signature_format"), "jwt_secret" in cleaned)
    for name, value in cleaned.items():
        setattr(webhook, name, value)
    if enabled != webhook.active or (enabled and webhook.out_of_order):
        triggers.set_enabled(webhook, enabled)
    if webhook.http_method != "POST":
        webhook.data = {}
    webhook.modified_at = utcnow()
    if "label" in cleaned or "external_url" in cleaned:
        db.session.merge(
            WebhookSearch(webhook_id=webhook.id, account_id=webhook.account_id, text=WebhookSearch.text_of(webhook))
        )


def set_enabled(webhook: Webhook, enabled: bool) -> Webhook:
    """Enable or disable. Enabling brings an Out-of-order webhook back: a trigger left pending
    (events arrived meanwhile) is sent at once. Disabling drops the pending trigger."""
    was_active = webhook.active
    triggers.set_enabled(webhook, enabled)
    webhook.modified_at = utcnow()
    changes = {"active": {"before": was_active, "after": webhook.active}}
    audit.record_webhook("webhook.enabled" if enabled else "webhook.disabled", webhook, changes)
    db.session.commit()
    _wake_if_due(webhook)
    return webhook


def trigger_now(webhook: Webhook) -> Webhook:
    """Trigger Now: count an event and make the pending trigger due now; re-enables Out of order.

    No event is stored: a press names no object that changed, and the events' list is what
    handlers read (``GET /public/v1/events``) to learn what did. So the count goes to
    ``trigger_now_count`` too, and the Statistics tab says what Events includes ("11: 7 posted,
    4 Trigger Now"): the posted ones are those the Events tab lists, the presses are on the
    Activity tab, and the numbers a person sees add up (docs/using.md, "Statistics, deliveries
    and Redeliver").

    Raises WebhookValidationError for a disabled webhook: enable it first.
    """
    if not webhook.active:
        raise WebhookValidationError({"active": ["The webhook is disabled: enable it before triggering it."]})
    triggers.make_due_now(webhook, count_event=True)
    audit.record_webhook("webhook.triggered", webhook)
    db.session.commit()
    db.session.refresh(webhook)
    dispatch.wake([webhook.id])
    return webhook


def retry_now(webhook: Webhook) -> Webhook:
    """Retry now: a Failing or Out-of-order webhook's trigger is sent at once, counting no event
    and, for a Failing one, keeping its attempt number. Raises WebhookValidationError otherwise."""
    if not webhook.retryable:
        raise WebhookValidationError({"status": ["Only a Failing or Out-of-order webhook has a retry to send."]})
    if webhook.lease_id is None:  # an attempt in flight is its own retry
        triggers.make_due_now(webhook, count_event=False)
    audit.record_webhook("webhook.retried", webhook)
    db.session.commit()
    _wake_if_due(webhook)
    return webhook


def _wake_if_due(webhook: Webhook) -> None:
    db.session.refresh(webhook)
    if triggers.due_now(webhook):
        dispatch.wake([webhook.id])


def delete_webhook(webhook: Webhook) -> None:
    """Delete the webhook for good, at once whatever its history: its attempt log is removed by
    the workers in the background (``deleted_webhooks`` remembers it until then)."""
    db.session.add(DeletedWebhook(webhook_id=webhook.id, deleted_at=utcnow()))
    db.session.execute(delete(WebhookSearch).where(WebhookSearch.webhook_id == webhook.id))
    audit.record_webhook("webhook.deleted", webhook)
    db.session.delete(webhook)
    db.session.commit()
    dispatch.purge(webhook.id)


def _unused_webhook_id() -> str:
    """A new id, never one of a live webhook or of a deleted one whose attempts still exist."""
    while True:
        candidate = new_id("WH", WEBHOOK_GROUPS)
        if db.session.get(Webhook, candidate) is None and db.session.get(DeletedWebhook, candidate) is None:
            return candidate
