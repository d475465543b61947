"""Trace context: one event is one trace, from the event API through the delivery job and the
attempt to the handler's call back; coalesced events are the delivery's links
(docs/operations.md, "Tracing"). Spans go to the SDK's in-memory exporter on the test app's
runtime; the deliveries are made by the real delivery job, to a real handler on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from tests.conftest import Tenant, make_webhook
from tests.engine import api_token, post_event, run_worker
from tests.servers import HandlerServer
from webhookapp.engine import runtime, tracing
from webhookapp.infra.extensions import db
from webhookapp.models import Attempt, Event


@pytest.fixture
def spans(app: Flask) -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    runtime.of(app).trace_to(exporter)
    yield exporter


def traceparent_parts(value: str) -> tuple[int, int]:
    """The trace id and span id of a ``traceparent`` header."""
    version, trace_id, span_id, _flags = value.split("-")
    assert version == "00"
    return int(trace_id, 16), int(span_id, 16)


def named(finished: tuple[ReadableSpan, ...], kind: SpanKind, name: str | None = None) -> list[ReadableSpan]:
    return [span for span in finished if span.kind == kind and (name is None or span.name == name)]


def test_one_event_is_one_trace_to_the_handler_and_back(
    app: Flask, client: FlaskClient, vendor: Tenant, handler: HandlerServer, spans: InMemorySpanExporter
) -> None:
    hook = make_webhook(vendor, external_url=handler.behave("/traced"))
    token = api_token(vendor.account)

    status, body = post_event(client, token, object_class=hook.object_class, product_id=hook.product_id)
    assert status == 202, body
    run_worker(app)
    [request] = handler.wait_for("/traced")
    # The handler calls back for the events with the delivery's JWT, passing the trace context on.
    answer = client.get(
        "/public/v1/events",
        headers={"Authorization": request.headers["Authorization"], "traceparent": request.headers["traceparent"]},
    )
    assert answer.status_code == 200, answer.text

    finished = spans.get_finished_spans()
    [api] = named(finished, SpanKind.SERVER, "POST /public/v1/events")
    [deliver] = named(finished, SpanKind.PRODUCER)
    [attempt] = named(finished, SpanKind.CLIENT)
    [callback] = named(finished, SpanKind.SERVER, "GET /public/v1/events")
    trace_id = api.context.trace_id
    assert {span.context.trace_id for span in (api, deliver, attempt, callback)} == {trace_id}
    # The handler got the attempt's context: its own spans join the trace.
    assert traceparent_parts(request.headers["traceparent"]) == (trace_id, attempt.context.span_id)
    assert deliver.parent.span_id == api.context.span_id
    assert attempt.parent.span_id == deliver.context.span_id
    assert callback.parent.span_id == attempt.context.span_id

    [attempt_row] = db.session.query(Attempt).all()
    assert api.attributes[tracing.EVENT_ID] == body["id"]
    assert tuple(api.attributes[tracing.WEBHOOK_ID]) == (hook.id,)
    assert deliver.attributes[tracing.WEBHOOK_ID] == attempt.attributes[tracing.WEBHOOK_ID] == hook.id
    assert deliver.attributes[tracing.ATTEMPT_ID] == attempt.attributes[tracing.ATTEMPT_ID] == attempt_row.id
    assert attempt.attributes["http.response.status_code"] == 200
    assert deliver.attributes[tracing.JOB_ID]  # the RQ job that delivered
    assert tuple(callback.attributes[tracing.WEBHOOK_ID]) == (hook.id,)
    # The attempt's page shows which trace it was.
    assert attempt_row.request_headers["traceparent"] == request.headers["traceparent"]
    stored = db.session.get(Event, body["id"]).traceparent
    assert traceparent_parts(stored) == (trace_id, api.context.span_id)


def test_coalesced_events_are_the_deliverys_links(
    app: Flask, client: FlaskClient, vendor: Tenant, handler: HandlerServer, spans: InMemorySpanExporter
) -> None:
    hook = make_webhook(vendor, external_url=handler.behave("/coalesced"))
    other = make_webhook(vendor, external_url=handler.behave("/other"), type_key="tier_config_request.event")
    token = api_token(vendor.account)
    for _ in range(3):  # no worker yet: the first makes the trigger due, the others join it
        status, body = post_event(client, token, object_class=hook.object_class, product_id=hook.product_id)
        assert status == 202, body
    post_event(client, token, object_class=other.object_class, product_id=other.product_id)

    run_worker(app)
    [request] = handler.wait_for("/coalesced")

    finished = spans.get_finished_spans()
    events = named(finished, SpanKind.SERVER, "POST /public/v1/events")
    first, second, third, elsewhere = sorted(events, key=lambda span: span.start_time or 0)
    [deliver] = [span for span in named(finished, SpanKind.PRODUCER) if span.attributes[tracing.WEBHOOK_ID] == hook.id]
    assert deliver.context.trace_id == first.context.trace_id
    assert deliver.parent.span_id == first.context.span_id
    assert traceparent_parts(request.headers["traceparent"])[0] == first.context.trace_id
    # The others it carries are links, newest first; another webhook's event is not among them.
    assert [(link.context.trace_id, link.context.span_id) for link in deliver.links] == [
        (span.context.trace_id, span.context.span_id) for span in (third, second)
    ]
    assert deliver.attributes[tracing.LINKED] == 2
    assert elsewhere.context.trace_id not in {link.context.trace_id for link in deliver.links}


def test_without_an_exporter_nothing_is_traced(
    app: Flask, client: FlaskClient, vendor: Tenant, handler: HandlerServer
) -> None:
    assert runtime.of(app).tracer() is None  # the test environment names no exporter
    hook = make_webhook(vendor, external_url=handler.behave("/untraced"))
    status, body = post_event(client, api_token(vendor.account), object_class=hook.object_class,
                              product_id=hook.product_id)  # fmt: skip
    assert status == 202, body
    run_worker(app)
    [request] = handler.wait_for("/untraced")
    assert "traceparent" not in {name.lower() for name in request.headers}
    assert db.session.get(Event, body["id"]).traceparent is None
