"""Trace context on the calls made at once (docs/operations.md, "Tracing"): Redeliver, Recover,
Send test request and validation calls are each a trace of their own, started by the action,
and the handler gets the attempt's ``traceparent``; Redeliver links the original attempt's trace.
Spans go to the SDK's in-memory exporter; the calls reach a real handler on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from flask import Flask
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy import insert, select

from tests.conftest import make_webhook
from tests.engine import api_token, post_event, run_worker
from tests.http.test_send_test import edit_form, result_box
from tests.pages import text
from tests.worker.test_tracing import named, traceparent_parts
from webhookapp.core.times import utcnow
from webhookapp.engine import runtime, tracing
from webhookapp.infra.extensions import db
from webhookapp.models import Attempt, Webhook
from webhookapp.services import recoveries

HOOKS = "/public/v1/notifications/webhooks"


@pytest.fixture
def spans(app: Flask) -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    runtime.of(app).trace_to(exporter)
    yield exporter


def attempts(hook_id: str) -> list[Attempt]:
    db.session.rollback()
    return list(db.session.scalars(select(Attempt).where(Attempt.webhook_id == hook_id).order_by(Attempt.id)))


def the_call(exporter: InMemorySpanExporter, name: str) -> tuple[ReadableSpan, ReadableSpan]:
    """The action's span named ``name`` and its attempt's client span, checked to be one new trace."""
    finished = exporter.get_finished_spans()
    [action] = named(finished, SpanKind.INTERNAL, name)
    [attempt] = named(finished, SpanKind.CLIENT)
    assert action.parent is None  # started by the action itself: the root of its trace
    assert attempt.parent.span_id == action.context.span_id
    assert attempt.context.trace_id == action.context.trace_id
    return action, attempt


def test_redeliver_is_a_trace_of_its_own_linked_to_the_original(app, client, vendor, handler, spans):
    hook = make_webhook(vendor, external_url=handler.behave("/hook", status=500))
    token = api_token(vendor.account)
    post_event(client, token, object_class=hook.object_class, product_id=hook.product_id)
    run_worker(app)
    [first] = handler.wait_for("/hook")
    [original] = attempts(hook.id)
    [sent_first] = named(spans.get_finished_spans(), SpanKind.CLIENT)
    spans.clear()

    handler.behave("/hook")  # fixed: it answers 200 now
    response = client.post(f"{HOOKS}/{hook.id}/attempts/{original.id}/redeliver",
                           headers={"Authorization": f"ApiKey {token}"})  # fmt: skip
    assert response.status_code == 201, response.get_json()

    again = handler.wait_for("/hook", 2)[1]
    action, attempt = the_call(spans, "redeliver webhook")
    assert action.context.trace_id != sent_first.context.trace_id
    # Linked to the context the original attempt was sent with, as its handler saw it.
    assert [(link.context.trace_id, link.context.span_id) for link in action.links] == [
        traceparent_parts(first.headers["traceparent"])
    ]
    assert traceparent_parts(again.headers["traceparent"]) == (action.context.trace_id, attempt.context.span_id)
    new = attempts(hook.id)[-1]
    assert new.redelivery_of == original.id and new.success
    assert new.request_headers["traceparent"] == again.headers["traceparent"]
    assert action.attributes[tracing.WEBHOOK_ID] == attempt.attributes[tracing.WEBHOOK_ID] == hook.id
    assert action.attributes[tracing.ATTEMPT_ID] == attempt.attributes[tracing.ATTEMPT_ID] == new.id
    assert action.attributes[tracing.REDELIVERY_OF] == original.id
    assert attempt.attributes["http.response.status_code"] == 200


def test_send_test_request_sends_its_trace_context(client, auth, vendor, handler, spans):
    hook = make_webhook(vendor, external_url=handler.behave("/test", status=503))
    auth.login()
    assert "HTTP 503" in result_box(text(client.post(f"/webhooks/{hook.id}/edit", data=edit_form(hook))))

    [sent] = handler.wait_for("/test")
    action, attempt = the_call(spans, "send test request")
    assert traceparent_parts(sent.headers["traceparent"]) == (action.context.trace_id, attempt.context.span_id)
    assert action.attributes[tracing.WEBHOOK_ID] == hook.id
    assert tracing.ATTEMPT_ID not in action.attributes  # nothing is recorded
    assert not action.status.is_ok and attempt.attributes["http.response.status_code"] == 503


def test_a_validation_call_sends_its_trace_context(client, vendor, handler, spans):
    url = handler.behave("/validate", body=b'{"id": "PR-1"}')
    hook = make_webhook(vendor, label="Check", type_key="fulfillment_request.validator", external_url=url)
    answer = client.post(
        "/public/v1/validations",
        json={"type": "validator", "product_id": hook.product_id, "request": {"id": "PR-1"}},
        headers={"Authorization": f"ApiKey {api_token(vendor.account)}"},
    )
    assert answer.status_code == 200, answer.get_json()

    [sent] = handler.wait_for("/validate")
    action, attempt = the_call(spans, "call validation webhook")
    assert traceparent_parts(sent.headers["traceparent"]) == (action.context.trace_id, attempt.context.span_id)
    [recorded] = attempts(hook.id)
    assert recorded.request_headers["traceparent"] == sent.headers["traceparent"]
    assert action.attributes[tracing.ATTEMPT_ID] == recorded.id


def test_each_request_of_a_recovery_sends_its_trace_context(app, vendor, handler, spans):
    app.config["WEBHOOK_RECOVER_RATE"] = 1000
    hook = make_webhook(vendor, external_url=handler.behave("/recover"))
    since = utcnow() - timedelta(hours=1)
    row = {"webhook_id": hook.id, "kind": "trigger", "number": 1, "started_at": since + timedelta(minutes=1),
           "success": False, "request_method": "POST", "request_url": "https://old.example/hook",
           "request_headers": {}}  # fmt: skip
    [failed] = db.session.scalars(insert(Attempt).returning(Attempt.id), [row])
    db.session.commit()
    recovery = recoveries.start(db.session.get(Webhook, hook.id), since)
    run_worker(app)

    [sent] = handler.wait_for("/recover")
    action, attempt = the_call(spans, "recover webhook")
    assert traceparent_parts(sent.headers["traceparent"]) == (action.context.trace_id, attempt.context.span_id)
    [again] = [item for item in attempts(hook.id) if item.redelivery_of == failed]
    assert action.attributes[tracing.RECOVERY_ID] == recovery.id
    assert action.attributes[tracing.REDELIVERY_OF] == failed
    assert action.attributes[tracing.ATTEMPT_ID] == again.id
