"""Redeliver (docs/architecture.md, "Redeliver"): send one attempt's request again, now, and record
it as a new attempt that points at the first.

What is sent:

- synchronously, from the web request that asks (as Trigger Now on a validation webhook), through
  the delivery transport and its SSRF guard (:func:`.validations.synchronous_sender`), waiting at
  most ``WEBHOOK_VALIDATION_TIMEOUT``: the web process's limit for every call it waits on, a
  trigger's redelivery included;
- with the webhook's *current* HTTP settings (URL, method, custom headers, custom data, JWT
  secret), so that a handler or setting fixed since can be tried, and a freshly signed JWT
  (:func:`.signing.build_call`, as for every attempt);
- for a trigger's attempt, the payload of a trigger (``api_url``: the webhook's last event's, as
  triggers use); for a validation's attempt, the request body that attempt recorded (the draft),
  posted again and judged as validations are (:func:`.validations.judge`).

What is recorded: one attempt of the same kind and number as the original, ``redelivery_of`` the
original's id, or the original's own ``redelivery_of`` when it was a redelivery itself, so that
every redelivery points at the attempt its trigger (or validation) made. Nothing else changes:
no event is counted, no statistics or last success/failure summary, and the trigger state
(pending trigger, retry schedule, lease, Out of order) is left alone. A disabled webhook sends
nothing. With tracing on, the call is a trace of its own linked to the original's
(:class:`.tracing.DirectTrace`), and the handler gets its ``traceparent``.
"""

from __future__ import annotations

import json
from typing import Any

from webhookapp.core.errors import ServiceError
from webhookapp.core.times import utcnow
from webhookapp.engine import outcomes, runtime, signing, tracing
from webhookapp.engine.direct import validations
from webhookapp.engine.types import AttemptResult, PreparedCall, snapshot
from webhookapp.infra.extensions import db
from webhookapp.models import Actor, Attempt, Webhook, audit


def _call(webhook: Webhook, original: Attempt) -> PreparedCall:
    """The request to send again, signed now with the webhook's current settings."""
    settings = snapshot(webhook)
    now = utcnow()
    if original.kind != "validation":
        return signing.build_call(settings, triggered_at=now, api_url=webhook.last_event_api_url)
    try:
        draft: Any = json.loads(original.request_body or "")
    except (ValueError, RecursionError):
        draft = None
    if not isinstance(draft, dict):
        raise ServiceError(
            400, "VAL_001", "This attempt's request body was not kept as a JSON object: it cannot be sent again."
        )
    return signing.build_call(settings, triggered_at=now, api_url=webhook.last_event_api_url, method="POST", body=draft)


def redeliver(webhook: Webhook, original: Attempt, actor: Actor) -> Attempt:
    """Send ``original`` (an attempt of ``webhook``) again now; return the new attempt, recorded
    with the audit entry of ``actor`` in the same transaction.

    Raises :class:`ServiceError`: 400 for a disabled webhook or a validation attempt whose body
    cannot be read back, 404 when the webhook is deleted while the request is out.
    """
    if not webhook.active:
        raise ServiceError(400, "VAL_001", "The webhook is disabled: enable it before redelivering.")
    call = _call(webhook, original)
    webhook_id, kind, number = webhook.id, original.kind, original.number
    root = original.redelivery_of or original.id
    # A trace of its own, started by the user; it links the trace the original was sent in.
    with tracing.DirectTrace(
        runtime.current().tracer(),
        "redeliver webhook",
        webhook_id,
        links=[(original.request_headers or {}).get("traceparent")],
        attributes={tracing.ATTEMPT_NUMBER: number, tracing.REDELIVERY_OF: original.id},
    ) as traced:
        traced.sending(call)
        result: AttemptResult = validations.synchronous_sender().send(call)
        if original.kind == "validation":
            result, _answer = validations.judge(result)
        traced.answered(result)
        attempt = outcomes.record_redelivery(webhook_id, number, call, result, kind, root)
        if attempt is None:
            raise ServiceError(404, "WH_404", f"Webhook {webhook_id} not found.")
        traced.recorded(attempt.id)
    audit.record(
        actor, "webhook.redelivered", account_id=webhook.account_id, object_type="webhook", object_id=webhook_id,
        object_label=webhook.label, changes={"attempt": {"before": original.id, "after": attempt.id}},
    )  # fmt: skip
    db.session.commit()
    return attempt
