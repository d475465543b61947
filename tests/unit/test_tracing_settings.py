"""When tracing is on, and whose tracer provider it is (docs/operations.md, "Tracing")."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from webhookapp.engine import runtime, tracing


@pytest.mark.parametrize(
    ("environ", "on"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "console"}, True),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, False),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, False),  # no endpoint named: nowhere to send them
    ],
)
def test_tracing_is_on_only_when_an_exporter_is_named(environ: dict[str, str], on: bool) -> None:
    assert tracing.wanted(environ) is on


def test_the_exporter_is_the_one_named() -> None:
    assert isinstance(tracing.exporter_from({"OTEL_TRACES_EXPORTER": "console"}), ConsoleSpanExporter)
    exporter = tracing.exporter_from({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    assert isinstance(exporter, OTLPSpanExporter)
    exporter.shutdown()


def test_the_provider_is_the_apps_not_the_process_global_one(app) -> None:
    made = runtime.of(app)
    assert made.tracer() is None
    provider = made.trace_to(InMemorySpanExporter())
    assert made.tracer() is not None
    assert trace.get_tracer_provider() is not provider
    assert not isinstance(trace.get_tracer_provider(), TracerProvider)  # still the API's default proxy
