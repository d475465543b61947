"""JSON shapes of the management API (docs/architecture.md, "Management API"), and the checks on what clients send."""

from __future__ import annotations

from typing import Any

from flask import current_app

from webhookapp.core.times import isoformat
from webhookapp.models import Attempt, Event, Webhook

# Failing is a state of an enabled webhook: the API keeps the platform's three statuses.
STATUS_KEYS = {"Enabled": "enabled", "Failing": "enabled", "Disabled": "disabled", "Out of order": "out_of_order"}

# What a client may send, with the JSON type each must have.
WRITABLE = {
    "label": str,
    "description": str,
    "active": bool,
    "product_id": str,
    "object_class": str,
    "type": str,
    "http_method": str,
    "external_url": str,
    "signature_format": str,
    "jwt_secret": str,
    "headers": dict,
    "data": dict,
    # Mutual TLS (PEM); the key is write-only, and an empty certificate removes both.
    "tls_client_cert": str,
    "tls_client_key": str,
    "tls_ca_bundle": str,
}
# Returned by the API (or, for "events", by Connect itself) and so sent back by clients that PUT
# what they GET: accepted and ignored.
READ_ONLY = {
    "id", "account", "status", "api_url", "stats", "last_event", "last_success", "last_failure",
    "earliest_possible_trigger", "created_at", "modified_at", "events", "jwt_secret_next", "retry",
    "disabled_reason", "tls_client_key_set", "signature_switch_pending",
}  # fmt: skip
TYPE_NAMES = {str: "a string", bool: "true or false", dict: "an object"}
NULLABLE = frozenset({"tls_client_cert", "tls_client_key", "tls_ca_bundle"})
"""Writable fields that also take null (as a webhook without a certificate returns them): empty."""


def outcome(info: dict[str, Any] | None, at: Any) -> dict[str, Any] | None:
    if at is None:
        return None
    info = info or {}
    return {
        "at": isoformat(at),
        "status": info.get("status"),
        "duration_ms": info.get("duration_ms"),
        "error": info.get("error"),
        "attempt_id": info.get("attempt_id"),
    }


SECRET_FIELDS = ("jwt_secret", "jwt_secret_next")
"""Returned and accepted only for a token with ``webhooks:secrets`` (docs/security.md, "Scoped and
expiring API tokens")."""


def retry_json(webhook: Webhook) -> dict[str, Any] | None:
    """A Failing webhook's next attempt, as the pages say it ("attempt 3 of 10 at …, asked by the
    handler"); None when it is not Failing."""
    if not webhook.failing:
        return None
    return {
        "attempt": webhook.next_attempt,
        "max_attempts": int(current_app.config["WEBHOOK_MAX_ATTEMPTS"]),
        "at": None if webhook.lease_id else isoformat(webhook.next_trigger_at),
        "sending": webhook.lease_id is not None,
        "asked_by_handler": webhook.retry_asked,
    }


def webhook_json(webhook: Webhook, *, with_secrets: bool) -> dict[str, Any]:
    """A webhook as the API returns it; its secrets only ``with_secrets`` (the caller's token has
    ``webhooks:secrets``), else the keys are left out."""
    body = {
        "id": webhook.id,
        "label": webhook.label,
        "description": webhook.description,
        "active": webhook.active,
        "status": STATUS_KEYS[webhook.status],
        "object_class": webhook.object_class,
        "type": webhook.type,
        "http_method": webhook.http_method,
        "external_url": webhook.external_url,
        "signature_format": webhook.signature_format,
        "signature_switch_pending": webhook.signature_switch_pending,
        "jwt_secret": webhook.jwt_secret,
        "jwt_secret_next": webhook.jwt_secret_next,
        "headers": dict(webhook.headers or {}),
        "data": dict(webhook.data or {}),
        # The certificate and CA bundle are public; the key is never returned, only whether one is stored.
        "tls_client_cert": webhook.tls_client_cert,
        "tls_client_key_set": webhook.tls_client_key_encrypted is not None,
        "tls_ca_bundle": webhook.tls_ca_bundle,
        "product": {"id": webhook.product.id, "name": webhook.product.name},
        "account": {"id": webhook.account.id, "name": webhook.account.name},
        "api_url": webhook.last_event_api_url or current_app.config["WEBHOOK_API_URL"],
        "created_at": isoformat(webhook.created_at),
        "modified_at": isoformat(webhook.modified_at),
        "stats": {
            "events": webhook.events_count,
            "trigger_now_events": webhook.trigger_now_count,  # of "events": Trigger Now, no event stored
            "triggers": webhook.triggers_count,
            "success_triggers": webhook.success_count,
            "failure_triggers": webhook.failure_count,
            "failure_since_last_success": webhook.failures_since_last_success,
        },
        "last_event": isoformat(webhook.last_event_at),
        "last_success": outcome(webhook.last_success_info, webhook.last_success_at),
        "last_failure": outcome(webhook.last_failure_info, webhook.last_failure_at),
        "earliest_possible_trigger": None if webhook.out_of_order else isoformat(webhook.next_trigger_at),
        "retry": retry_json(webhook),
        "disabled_reason": None if webhook.active else webhook.disabled_reason,
    }
    if not with_secrets:
        for name in SECRET_FIELDS:
            del body[name]
    return body


def attempt_json(attempt: Attempt) -> dict[str, Any]:
    """A delivery attempt as the API returns it (the JWT's signature redacted)."""
    return {
        "id": attempt.id,
        "reference": attempt.reference,
        "webhook_id": attempt.webhook_id,
        "kind": attempt.kind,
        "number": attempt.number,
        "started_at": isoformat(attempt.started_at),
        "duration_ms": round(attempt.duration_ms, 1),
        "success": attempt.success,
        "error": attempt.error,
        "request": {
            "method": attempt.request_method,
            "url": attempt.request_url,
            "headers": attempt.request_headers,
            "body": attempt.request_body,
        },
        "response": None
        if attempt.response_status is None
        else {
            "status": attempt.response_status,
            "headers": attempt.response_headers or {},
            "body": attempt.response_body,
            "truncated": attempt.response_truncated,
        },
        "redelivery_of": attempt.redelivery_of,
    }


def event_json(event: Event, visible_webhooks: set[str]) -> dict[str, Any]:
    """An event as the API returns it: ``api_url`` as handlers receive it (the event's own, else
    ``WEBHOOK_API_URL``); ``webhooks`` the matched webhooks among ``visible_webhooks`` (the
    caller's own), as ``POST /events`` answered them."""
    return {
        "id": event.id,
        "external_id": event.client_event_id,
        "object_class": event.object_class,
        "object_id": event.object_id,
        "product": {"id": event.product_id},
        "api_url": event.api_url or current_app.config["WEBHOOK_API_URL"],
        "webhooks": [webhook_id for webhook_id in event.webhook_ids or () if webhook_id in visible_webhooks],
        "created_at": isoformat(event.created_at),
    }


def writable_fields(body: Any) -> tuple[dict[str, Any], list[str]]:
    """The writable fields of a create/update body, and the messages for everything wrong with it."""
    if not isinstance(body, dict):
        return {}, ["The body must be a JSON object."]
    errors = []
    fields: dict[str, Any] = {}
    for name, value in body.items():
        if name == "product" and isinstance(value, dict) and set(value) <= {"id", "name"}:
            name, value = "product_id", value.get("id")  # Connect clients send product {id}
        if name in READ_ONLY:
            continue
        expected = WRITABLE.get(name)
        if expected is None:
            errors.append(f"Unknown field '{name}'.")
        elif value is None and name in NULLABLE:
            fields[name] = ""
        elif not isinstance(value, expected) or (expected is not bool and isinstance(value, bool)):
            errors.append(f"'{name}' must be {TYPE_NAMES[expected]}.")
        else:
            fields[name] = value
    if "headers" in fields and not all(isinstance(v, str) for v in fields["headers"].values()):
        errors.append("'headers' values must be strings.")
    return fields, errors
