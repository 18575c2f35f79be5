"""OpenTelemetry set-up from the standard OTEL_* variables only.

Each Coach gets its own TracerProvider: the local span store writes to that Coach's
database, and, when an OTLP endpoint is configured, one OTLP/HTTP exporter per
process (a BatchSpanProcessor on a background thread, with a short timeout) is
shared by every provider, so an unreachable collector never holds up a turn.
`OTEL_SDK_DISABLED=true` turns all of it off.
"""

from __future__ import annotations

import atexit
import functools
import os
import threading
import time
from collections.abc import Callable, Sequence
from functools import cache

from opentelemetry import metrics, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from sqlalchemy import Engine

from telemetry.spanstore import SpanStoreExporter, TurnSpanProcessor

SERVICE_NAME = "portfolio-coach"
# Seconds per OTLP request unless OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT says otherwise: a
# collector that is down costs at most this at exit, never during a turn.
EXPORT_TIMEOUT = 2.0
# `COACH_TRACE_STORE=off` keeps traces out of the local database (OTLP export still works).
STORE_VARIABLE = "COACH_TRACE_STORE"


def sdk_disabled() -> bool:
    return os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


def store_enabled() -> bool:
    return os.environ.get(STORE_VARIABLE, "").strip().lower() not in ("off", "0", "false")


def resource() -> Resource:
    return Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME") or SERVICE_NAME})


def _otlp_configured(signal: str) -> bool:
    return bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
                or os.environ.get(f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT"))


def _timeout(signal: str) -> float | None:
    explicit = (os.environ.get(f"OTEL_EXPORTER_OTLP_{signal}_TIMEOUT")
                or os.environ.get("OTEL_EXPORTER_OTLP_TIMEOUT"))
    return None if explicit else EXPORT_TIMEOUT


@cache
def otlp_processor() -> SpanProcessor | None:
    """The process's OTLP/HTTP span export, or None when no endpoint is configured."""
    if sdk_disabled() or not _otlp_configured("TRACES"):
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    processor = BatchSpanProcessor(OTLPSpanExporter(timeout=_timeout("TRACES")))
    _AT_EXIT.append(processor.shutdown)
    return processor


def coach_provider(engine: Engine | None = None) -> trace.TracerProvider:
    """A provider for one Coach: its span store (if on) plus the process's OTLP export."""
    if sdk_disabled():
        return trace.NoOpTracerProvider()
    provider = TracerProvider(resource=resource(), shutdown_on_exit=False)
    if engine is not None and store_enabled():
        provider.add_span_processor(TurnSpanProcessor(SpanStoreExporter(engine)))
    otlp = otlp_processor()
    if otlp is not None:
        provider.add_span_processor(otlp)
    return provider


@cache
def default_meter_provider() -> metrics.MeterProvider:
    """The process's meters: exported over OTLP/HTTP when an endpoint is set, else no-op."""
    if sdk_disabled() or not _otlp_configured("METRICS"):
        return metrics.NoOpMeterProvider()
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

    from telemetry.metrics import views

    reader = PeriodicExportingMetricReader(OTLPMetricExporter(timeout=_timeout("METRICS")))
    # Its own exit hook sends the last numbers once; flushing too would send them twice,
    # and a collector that is down would cost that wait twice.
    provider = MeterProvider(metric_readers=[reader], resource=resource(), views=views(),
                             shutdown_on_exit=False)
    _AT_EXIT.append(provider.shutdown)
    return provider


def within(seconds: float, actions: Sequence[Callable[[], object]]) -> bool:
    """Run `actions` side by side and wait for them `seconds` in all, not each: with the
    collector down, traces and metrics share one deadline instead of adding theirs up.
    True when every action finished in time; a late one is left to the exiting process."""
    threads = [threading.Thread(target=action, daemon=True, name="coach-telemetry-flush")
               for action in actions]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + seconds
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return not any(thread.is_alive() for thread in threads)


def flush(*providers: object, seconds: float = EXPORT_TIMEOUT) -> bool:
    """Spans and metrics must leave before a CLI process exits: every provider flushes at
    once, within one shared deadline."""
    actions = [functools.partial(force_flush, timeout_millis=int(seconds * 1000))
               for provider in providers
               if (force_flush := getattr(provider, "force_flush", None)) is not None]
    return within(seconds, actions)


# The process's OTLP span export and meter provider shut down together at exit, within one
# deadline (each would otherwise wait out its own exporter timeout, one after the other).
_AT_EXIT: list[Callable[[], object]] = []


@atexit.register
def _shutdown() -> None:
    if _AT_EXIT:
        within(EXPORT_TIMEOUT, list(_AT_EXIT))
        _AT_EXIT.clear()


def trace_id_of(span: trace.Span) -> str | None:
    ctx = span.get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None
