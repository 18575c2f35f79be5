"""OpenTelemetry set-up from the standard OTEL_* variables only."""

from __future__ import annotations

import os
from functools import cache

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

SERVICE_NAME = "portfolio-coach"


def sdk_disabled() -> bool:
    return os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


@cache
def default_provider() -> trace.TracerProvider:
    """The process's provider: OTLP/HTTP export only when an endpoint is configured."""
    if sdk_disabled():
        return trace.NoOpTracerProvider()
    service = os.environ.get("OTEL_SERVICE_NAME") or SERVICE_NAME
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def flush(provider: trace.TracerProvider) -> None:
    """Spans must leave before a CLI process exits."""
    force_flush = getattr(provider, "force_flush", None)
    if force_flush:
        force_flush(timeout_millis=5000)


def trace_id_of(span: trace.Span) -> str | None:
    ctx = span.get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None
