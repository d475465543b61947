"""Trace context (docs/operations.md, "Tracing"): OpenTelemetry spans for the event API, each
delivery, its attempt and the handler's calls back, in one trace per event.

The tracer provider is the app's runtime's (:meth:`.Runtime.tracer`), never the process-global
one, so that two apps in a process (tests, embedding) trace apart. Tracing is off unless
``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set, or
``OTEL_TRACES_EXPORTER=console``; off, :meth:`.Runtime.tracer` is None and the hot paths make no
span object and store no trace context.

How a trace goes: the event API's span is stored as the event's ``traceparent`` and, if the event
made its webhook's trigger due, as the trigger's (``webhooks.trigger_traceparent``). The delivery
of that trigger is a child of it; it links the other events it carries (those stored since the
webhook's last success, most recent first, at most :data:`LINKS_MAX`). Its attempt is a client
span whose context goes to the handler in the W3C ``traceparent`` header; a handler that passes
it on when it calls back for the events joins the same trace.

A call made at once (Redeliver, Recover, Send test request, a validation call) is a trace of its
own, started by the user's action (:class:`DirectTrace`): a span for the action and the
attempt's client span under it, whose context the handler gets the same way. Redeliver links
the trace context the original attempt was sent with, when it was recorded.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from rq import get_current_job
from sqlalchemy import select

from webhookapp.infra.extensions import db
from webhookapp.models import Event, MatchSetWebhook
from webhookapp.version import __version__

if TYPE_CHECKING:
    from webhookapp.engine.types import AttemptResult, Claim, PreparedCall

LINKS_MAX = 32
"""Events a delivery links besides the one that made it due: the most recent ones."""

WEBHOOK_ID, EVENT_ID, ATTEMPT_ID, ATTEMPT_NUMBER = (
    "webhookapp.webhook.id",
    "webhookapp.event.id",
    "webhookapp.attempt.id",
    "webhookapp.attempt.number",
)
LINKED = "webhookapp.events.linked"
JOB_ID = "webhookapp.job.id"  # the RQ job that delivered
REDELIVERY_OF = "webhookapp.attempt.redelivery_of"  # Redeliver and Recover: the attempt sent again
RECOVERY_ID = "webhookapp.recovery.id"
_W3C = TraceContextTextMapPropagator()


def wanted(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the environment asks for traces to be exported."""
    exporter = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter == "none" or environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return exporter == "console" or bool(
        environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def exporter_from(environ: Mapping[str, str] = os.environ) -> SpanExporter:
    """The exporter the environment names: the console's, else OTLP over HTTP (which reads its
    own ``OTEL_EXPORTER_OTLP_*`` settings)."""
    if environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def provider(exporter: SpanExporter, *, batch: bool = True) -> TracerProvider:
    """A provider of our own that exports to ``exporter`` (in batches, from a thread, unless
    ``batch`` is False: each span as it ends, as tests want)."""
    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": "webhookapp"}
    made = TracerProvider(resource=Resource.create(attributes))
    made.add_span_processor(BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter))
    return made


def tracer_of(made: TracerProvider) -> Tracer:
    return made.get_tracer("webhookapp", __version__)


def traceparent(span: Span) -> str:
    """The W3C ``traceparent`` value of ``span`` (stored on the event and its trigger)."""
    carrier: dict[str, str] = {}
    _W3C.inject(carrier, context=trace.set_span_in_context(span))
    return carrier["traceparent"]


def _remote(value: str | None) -> trace.SpanContext | None:
    """The span context a stored ``traceparent`` names, or None for none or a malformed one."""
    if not value:
        return None
    context = trace.get_current_span(_W3C.extract({"traceparent": value})).get_span_context()
    return context if context.is_valid else None


@contextmanager
def serving(tracer: Tracer | None, name: str, headers: Iterable[tuple[str, str]]) -> Iterator[Span | None]:
    """A server span for a request whose caller may send a ``traceparent`` (its parent then);
    yields None, and makes nothing, when tracing is off."""
    if tracer is None:
        yield None
        return
    parent = propagate.extract({name.lower(): value for name, value in headers})
    with tracer.start_as_current_span(name, context=parent, kind=SpanKind.SERVER) as span:
        yield span


def carried(claim: Claim, limit: int = LINKS_MAX) -> list[trace.SpanContext]:
    """The contexts of the events a delivery carries besides its parent: stored (with a trace
    context) since the webhook's last success and up to the claim, matched by it, newest first."""
    webhook = claim.webhook
    its_sets = select(MatchSetWebhook.set_id).where(MatchSetWebhook.webhook_id == webhook.id)
    query = (
        select(Event.traceparent)
        .where(
            Event.match_set_id.in_(its_sets),
            Event.created_at <= claim.claimed_at,
            Event.traceparent.is_not(None),
        )
        .order_by(Event.created_at.desc())
        .limit(limit * 2)  # those of the delivery's own parent context are skipped below
    )
    if webhook.last_success_at is not None:
        query = query.where(Event.created_at > webhook.last_success_at)
    contexts = []
    # Its own connection in autocommit: the job's session must not sit in a transaction.
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        values = connection.scalars(query).all()
    for value in values:
        context = _remote(value) if value != claim.traceparent else None
        if context is not None:
            contexts.append(context)
        if len(contexts) == limit:
            break
    return contexts


@dataclass
class DeliveryTrace:
    """The spans of one delivery: made on the job's thread, the attempt's started and answered on
    a send thread, both ended once the attempt is recorded (with its id)."""

    tracer: Tracer
    webhook_id: str
    delivery: Span
    attempt: Span | None = None
    answered_ns: int | None = field(default=None)

    @classmethod
    def start(cls, tracer: Tracer, claim: Claim, links: list[trace.SpanContext]) -> DeliveryTrace:
        """The delivery's span, made by the job that delivers: a child of the event that made the
        trigger due, linking the others."""
        parent = _remote(claim.traceparent)
        context = trace.set_span_in_context(trace.NonRecordingSpan(parent)) if parent is not None else None
        span = tracer.start_span(
            "deliver webhook",
            context=context,
            kind=SpanKind.PRODUCER,
            links=[Link(link) for link in links],
            attributes={WEBHOOK_ID: claim.webhook.id, ATTEMPT_NUMBER: claim.attempt, LINKED: len(links)},
        )
        job = get_current_job()
        if job is not None:
            span.set_attribute(JOB_ID, job.id)
        return cls(tracer, claim.webhook.id, span)

    def sending(self, call: PreparedCall) -> None:
        """Start the attempt's span and put its context in the request's ``traceparent`` header
        (and in the recorded copy, so the attempt's page shows which trace it was)."""
        self.attempt = self.tracer.start_span(
            call.method,
            context=trace.set_span_in_context(self.delivery),
            kind=SpanKind.CLIENT,
            attributes={
                "http.request.method": call.method,
                "url.full": call.url.split("?", 1)[0],  # a query may carry the handler's own secrets
                WEBHOOK_ID: self.webhook_id,
            },
        )
        propagate.inject(call.headers, context=trace.set_span_in_context(self.attempt))
        call.logged_headers["traceparent"] = call.headers["traceparent"]

    def answered(self, result: AttemptResult) -> None:
        """The handler's answer (or the failure): the attempt's span ends here, once recorded."""
        self.answered_ns = time.time_ns()
        for span in (self.attempt, self.delivery):
            if span is None:
                continue
            if result.status is not None:
                span.set_attribute("http.response.status_code", result.status)
            if not result.success:
                span.set_status(Status(StatusCode.ERROR, result.error or "failed"))

    def recorded(self, attempt_id: int | None) -> None:
        """The attempt is recorded: both spans carry its id and end."""
        for span in (self.attempt, self.delivery):
            if span is not None and attempt_id is not None:
                span.set_attribute(ATTEMPT_ID, attempt_id)
        if self.attempt is not None:
            self.attempt.end(end_time=self.answered_ns)
        self.delivery.end()


class DirectTrace:
    """The spans of a call made at once, outside the trigger state: the action's span (``name``,
    e.g. "redeliver webhook"), a child of the current span if any (a server span of the request
    that asked) and otherwise the root of a new trace, and the attempt's client span under it.
    ``links``: stored ``traceparent`` values the call relates to (the original attempt's). Does
    nothing when ``tracer`` is None (tracing off). Used as a context manager, it ends its spans
    at the end of the block if :meth:`recorded` did not."""

    def __init__(
        self,
        tracer: Tracer | None,
        name: str,
        webhook_id: str,
        *,
        links: Iterable[str | None] = (),
        attributes: Mapping[str, str | int] | None = None,
    ) -> None:
        self._trace: DeliveryTrace | None = None
        if tracer is None:
            return
        contexts = [context for context in map(_remote, links) if context is not None]
        span = tracer.start_span(
            name,
            kind=SpanKind.INTERNAL,
            links=[Link(context) for context in contexts],
            attributes={WEBHOOK_ID: webhook_id, **(attributes or {})},
        )
        self._trace = DeliveryTrace(tracer, webhook_id, span)

    def __enter__(self) -> DirectTrace:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.recorded(None)  # a call that failed before it was recorded still ends its spans

    def sending(self, call: PreparedCall) -> None:
        """Start the attempt's span; its context goes in the request's ``traceparent`` header."""
        if self._trace is not None:
            self._trace.sending(call)

    def answered(self, result: AttemptResult) -> None:
        """The handler's answer (as recorded: a validation's is judged)."""
        if self._trace is not None:
            self._trace.answered(result)

    def recorded(self, attempt_id: int | None) -> None:
        """The attempt is recorded (None: nothing recorded, as for Send test request): both spans end."""
        if self._trace is not None:
            self._trace.recorded(attempt_id)
            self._trace = None
