"""Synchronous validation webhooks (docs/architecture.md, "Validations"): the platform posts a
draft request, the product's validation handler answers it at once (the request with
``value_error`` set where it objects).

The call uses the same JWT and SSRF rules as deliveries, waits at most
``WEBHOOK_VALIDATION_TIMEOUT``, and is recorded as an attempt and counted in the statistics. A
handler *answered* when it sent a JSON object with a 2xx status (passed on as 200), or 400 or
422 (the request with value errors); anything else (a refused JWT, a missing route, a 5xx, a redirect, a timeout) is
a failure, reported as 502 by the API. With tracing on, each call is a trace of its own
(:class:`.tracing.DirectTrace`), and the handler gets its ``traceparent``.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from webhookapp.core import catalog, rules
from webhookapp.core.errors import ServiceError
from webhookapp.core.times import utcnow
from webhookapp.engine import outcomes, runtime, signing, tracing, triggers
from webhookapp.engine.transport.sender import Sender
from webhookapp.engine.types import AttemptResult, snapshot
from webhookapp.infra.extensions import db
from webhookapp.models import Actor, ApiToken, Product, Webhook, audit, tenancy

ANSWER_STATUSES = (400, 422)  # a validation handler's "invalid request" answers
SAMPLE_PARAMS = [{"id": "sample_parameter", "value": "sample value", "value_error": ""}]
SAMPLE_NOTE = "Sample request sent by Trigger Now."


def sample_request(webhook: Webhook) -> dict[str, Any]:
    """What Trigger Now sends a validation webhook: a small request of the kind its type
    validates (a purchase or change request, draft or inquiring; a tier configuration setup or
    update request of tier 1 or 2)."""
    return sample_draft(webhook.object_class, webhook.type, webhook.product_id, webhook.product.name)


def sample_draft(object_class: str, type_: str, product_id: str, product_name: str) -> dict[str, Any]:
    """:func:`sample_request` for a validation type and product, before any webhook exists."""
    product = {"id": product_id, "name": product_name}
    status = "inquiring" if "inq" in type_ else "draft"
    if object_class == "tier_config_request":
        return {
            "id": "TCR-0000-0000-0000-001",
            "type": "update" if "update" in type_ else "setup",
            "status": status,
            "configuration": {
                "id": "TC-0000-0000-0000",
                "tier_level": 2 if "t2" in type_ else 1,
                "product": product,
                "account": {"id": "TA-0000-0000-0000", "name": "Sample tier account"},
                "params": [dict(param) for param in SAMPLE_PARAMS],
            },
            "note": SAMPLE_NOTE,
        }
    return {
        "id": "PR-0000-0000-0000-001",
        "type": "change" if type_.startswith("change") else "purchase",
        "status": status,
        "asset": {
            "id": "AS-0000-0000-0000",
            "product": product,
            "items": [{"id": "SKU_0001", "quantity": "1"}],
            "params": [dict(param) for param in SAMPLE_PARAMS],
        },
        "note": SAMPLE_NOTE,
    }


@dataclass
class ValidationAnswer:
    answered: bool
    status: int | None
    body: Any
    error: str | None
    attempt_id: int | None

    def as_json(self) -> dict[str, Any]:
        return {"answered": self.answered, "status": self.status, "body": self.body, "error": self.error,
                "attempt_id": self.attempt_id}  # fmt: skip


def synchronous_sender() -> Sender:
    """The web process's HTTP client for the calls it waits on (validations, Redeliver): the
    delivery transport and its SSRF guard, with ``WEBHOOK_VALIDATION_TIMEOUT``; the runtime's
    (:meth:`.Runtime.validation_sender`)."""
    return runtime.current().validation_sender()


def find_webhook(token: ApiToken, product: Product, type_: str) -> Webhook | None:
    """The product's active webhook of this validation type in the token's account (any account
    for a platform token); the oldest, if there are several."""
    query = select(Webhook).where(Webhook.product_id == product.id, Webhook.type == type_, Webhook.active.is_(True))
    if not token.is_platform:
        query = query.where(Webhook.account_id == token.account_id)
    return db.session.scalar(query.order_by(Webhook.created_at, Webhook.id).limit(1))


def call(webhook: Webhook, request_object: dict[str, Any], actor: Actor | None = None) -> ValidationAnswer:
    """POST ``request_object`` to the webhook's handler now; record and count the attempt (and,
    for Trigger Now, ``actor``'s audit entry with it)."""
    now = utcnow()
    prepared = signing.build_call(
        snapshot(webhook), triggered_at=now, api_url=webhook.last_event_api_url, method="POST", body=request_object
    )
    webhook_id = webhook.id
    with tracing.DirectTrace(runtime.current().tracer(), "call validation webhook", webhook_id) as traced:
        traced.sending(prepared)
        result = synchronous_sender().send(prepared)
        recorded, body = judge(result)
        traced.answered(recorded)
        attempt_id = outcomes.record_attempt(webhook_id, 1, prepared, recorded, "validation")
        traced.recorded(attempt_id)
    if attempt_id is not None:
        triggers.note_event(webhook_id, now)
        if actor is not None:
            audit.record(
                actor, "webhook.triggered", account_id=webhook.account_id, object_type="webhook",
                object_id=webhook_id, object_label=webhook.label,
            )  # fmt: skip
        db.session.commit()
    return ValidationAnswer(recorded.success, result.status, body, recorded.error, attempt_id)


def judge(result: AttemptResult) -> tuple[AttemptResult, Any]:
    """A validation call's outcome as recorded (a success when the handler *answered*: a JSON
    object with a 2xx, 400 or 422 status) and the handler's JSON (None unless it answered)."""
    body: Any = None
    answered = False
    error = result.error
    if result.status is not None and (200 <= result.status < 300 or result.status in ANSWER_STATUSES):
        try:
            body = json.loads(result.body or "")
        except (ValueError, RecursionError):
            body = None
        if isinstance(body, dict):  # the request object, value errors filled in
            answered, error = True, None
        else:
            body = None
            error = f"The handler answered HTTP {result.status} without a JSON object."
    elif result.status is not None and not error:
        error = f"The handler answered HTTP {result.status}."
    return dataclasses.replace(result, success=answered, error=error), body


def validate(token: ApiToken, body: Any) -> ValidationAnswer:
    """Serve ``POST /public/v1/validations``: find the webhook, call it, return its answer."""
    if not isinstance(body, dict):
        raise ServiceError(400, "VAL_001", "The body must be a JSON object.")
    errors = [f"Unknown field '{name}'." for name in sorted(set(body) - {"type", "product_id", "request"})]
    types = {entry.type for entry in catalog.CATALOG if entry.kind == catalog.VALIDATION}
    if not isinstance(body.get("type"), str) or body["type"] not in types:
        errors.append(f"'type' must be a validation type: {', '.join(sorted(types))}.")
    if not isinstance(body.get("product_id"), str):
        errors.append("'product_id' is required, as a string.")
    elif not rules.is_plain(body["product_id"]):
        errors.append("'product_id' may not contain control characters or lone surrogates.")
    if not isinstance(body.get("request"), dict):
        errors.append("'request' is required, as a JSON object.")
    if errors:
        raise ServiceError(400, "VAL_001", *errors)
    product = tenancy.usable_product(token.account, body["product_id"], platform=token.is_platform)
    if product is None:
        raise ServiceError(404, "PRD_404", f"Product {body['product_id']} not found.")
    webhook = find_webhook(token, product, body["type"])
    if webhook is None:
        raise ServiceError(404, "WH_404", f"No enabled {body['type']} webhook on product {product.id}.")
    return call(webhook, body["request"])


def send_sample(webhook: Webhook, actor: Actor) -> ValidationAnswer:
    """Trigger Now on a validation webhook: a :func:`sample_request`, answered at once.

    Raises :class:`ServiceError` for a disabled webhook: disabled webhooks send nothing."""
    if not webhook.active:
        raise ServiceError(400, "VAL_001", "The webhook is disabled: enable it before triggering it.")
    return call(webhook, sample_request(webhook), actor)
