"""Send test request (docs/architecture.md, "Send test request"): the wizard's HTTP Settings step
and the edit page call the handler now, with the settings as typed, before they are saved.

What is sent is what Trigger Now would send (a trigger's payload for an event type, a sample
draft for a validation type), signed with the typed secret, through the delivery transport and
its SSRF guard (:func:`.validations.synchronous_sender`, ``WEBHOOK_VALIDATION_TIMEOUT``).
Nothing is recorded: no attempt, no statistics, no trigger state; the result is only shown.
With tracing on, the call is a trace of its own (:class:`.tracing.DirectTrace`).
"""

from __future__ import annotations

from webhookapp.core.catalog import WebhookType
from webhookapp.core.times import utcnow
from webhookapp.engine import runtime, signing, tracing
from webhookapp.engine.direct import validations
from webhookapp.engine.transport.client_tls import ClientTLS
from webhookapp.engine.types import AttemptResult, WebhookSnapshot


def send_test(
    settings: WebhookSnapshot,
    entry: WebhookType,
    *,
    product_name: str,
    api_url: str | None,
    secret: str | None,
    client_tls: ClientTLS | None = None,
) -> AttemptResult:
    """Call the handler of ``settings`` (not necessarily saved) once now, signed with ``secret``
    and presenting ``client_tls`` (as typed; None: none); return what came back."""
    now = utcnow()
    if entry.kind == "validation":
        draft = validations.sample_draft(entry.object_class, entry.type, settings.product_id, product_name)
        call = signing.build_call(
            settings, triggered_at=now, api_url=api_url, method="POST", body=draft, secret=secret, client_tls=client_tls
        )
    else:
        call = signing.build_call(settings, triggered_at=now, api_url=api_url, secret=secret, client_tls=client_tls)
    with tracing.DirectTrace(runtime.current().tracer(), "send test request", settings.id) as traced:
        traced.sending(call)
        result = validations.synchronous_sender().send(call)
        traced.answered(result)
    return result
