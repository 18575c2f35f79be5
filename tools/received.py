"""What the learner's own traces establish: verified observability, and cost per request
from the model usage the spans carry.

Spans arrive through `POST /v1/traces` or `coach projects import-traces` (telemetry.ingest);
this module turns the stored spans into two verified evidence records, refreshed whenever
newer spans exist. Anthropic models are priced with the coach's own table; other providers
with genai-prices. An unknown model is unknown, never $0. The learner's spend lives here,
apart from the coach's ledger.
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlmodel import Session, col, func, select

from memory.models import Evidence, ReceivedSpan, utcnow
from seam.pricing import PriceTable, Usage, price_table

# Instrumentation scope prefixes to the library a learner would name.
SCOPE_LIBRARIES: tuple[tuple[str, str], ...] = (
    ("openinference", "openinference"), ("opentelemetry", "opentelemetry"),
    ("langfuse", "langfuse"), ("logfire", "logfire"), ("langsmith", "langsmith"),
    ("weave", "weave"), ("pydantic-ai", "logfire"), ("phoenix", "phoenix"),
)


def library_of_scope(scope: str, attributes: dict[str, Any]) -> str | None:
    lowered = scope.lower()
    for prefix, library in SCOPE_LIBRARIES:
        if lowered.startswith(prefix) or f"/{prefix}" in lowered:
            return library
    if "openinference.span.kind" in attributes:
        return "openinference"
    if any(k.startswith("gen_ai.") for k in attributes):
        return "opentelemetry"  # GenAI semantic conventions: some OpenTelemetry instrumentation
    return None


def _other_provider_cost(span: ReceivedSpan, on: date) -> Decimal | None:
    from genai_prices import Usage as PriceUsage
    from genai_prices import calc_price

    usage = PriceUsage(input_tokens=span.input_tokens, output_tokens=span.output_tokens,
                       cache_read_tokens=span.cache_read_input_tokens,
                       cache_write_tokens=span.cache_creation_input_tokens)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # its "prices may be out of date" notice
            price = calc_price(usage, model_ref=span.model or "", provider_id=span.provider)
    except (LookupError, ValueError):
        return None
    return Decimal(str(price.total_price))


def span_cost(span: ReceivedSpan, prices: PriceTable | None = None) -> Decimal | None:
    """The span's model cost in USD, or None when its model has no known price."""
    model = (span.model or "").lower()
    on = span.start_time.date()
    if model.startswith("claude") or (span.provider or "") in ("anthropic", "aws.bedrock"):
        # GenAI and OpenInference input counts include cached tokens; Anthropic's do not.
        cached = span.cache_read_input_tokens + span.cache_creation_input_tokens
        fresh = span.input_tokens - cached if span.input_tokens >= cached else span.input_tokens
        usage = Usage(fresh, span.output_tokens, span.cache_read_input_tokens,
                      span.cache_creation_input_tokens)
        return (prices or price_table()).cost(model, usage, on)
    return _other_provider_cost(span, on)


def _p95(values: list[Decimal]) -> Decimal:
    ordered = sorted(values)
    return ordered[max(math.ceil(0.95 * len(ordered)) - 1, 0)]


def cost_summary(spans: list[ReceivedSpan], prices: PriceTable | None = None
                 ) -> dict[str, Any] | None:
    """Cost per request over the traces that carry model usage; None when none do."""
    per_trace: dict[str, Decimal | None] = {}
    models: set[str] = set()
    unknown: set[str] = set()
    tokens: defaultdict[str, int] = defaultdict(int)
    for span in spans:
        if not span.model or not (span.input_tokens or span.output_tokens):
            continue
        models.add(span.model)
        for key in ("input_tokens", "output_tokens", "cache_read_input_tokens",
                    "cache_creation_input_tokens"):
            tokens[key] += getattr(span, key)
        cost = span_cost(span, prices)
        if cost is None:
            unknown.add(span.model)
        seen = per_trace.get(span.trace_id, Decimal(0))
        per_trace[span.trace_id] = None if seen is None or cost is None else seen + cost
    if not per_trace:
        return None
    known = [c for c in per_trace.values() if c is not None]
    summary: dict[str, Any] = {
        "requests": len(per_trace), "requests_priced": len(known), "models": sorted(models),
        "unknown_models": sorted(unknown), "tokens": dict(tokens),
        "total_usd": str(sum(known, Decimal(0))) if known else None,
        "per_request_mean_usd": None, "per_request_p95_usd": None}
    if known:
        mean = sum(known, Decimal(0)) / len(known)
        summary["per_request_mean_usd"] = str(mean.quantize(Decimal("0.0000001")))
        summary["per_request_p95_usd"] = str(_p95(known))
    return summary


def traces_summary(spans: list[ReceivedSpan], prices: PriceTable | None = None
                   ) -> dict[str, Any]:
    libraries: set[str] = set()
    scopes: set[str] = set()
    for span in spans:
        if span.scope:
            scopes.add(span.scope)
        library = library_of_scope(span.scope, span.attributes)
        if library:
            libraries.add(library)
    received = [s.received_at for s in spans]
    return {
        "source": "traces", "services": sorted({s.service for s in spans}),
        "spans": len(spans), "traces": len({s.trace_id for s in spans}),
        "first_received": min(received).isoformat(timespec="seconds"),
        "last_received": max(received).isoformat(timespec="seconds"),
        "tools": sorted(libraries), "scopes": sorted(scopes)[:20],
        "tool": ", ".join(sorted(libraries)) or "OTLP", "cost": cost_summary(spans, prices),
        "through_span_id": max(s.id or 0 for s in spans)}


# Continuous ingest must not make every view re-read 10,000 spans: at most this often.
REFRESH_EVERY = timedelta(seconds=30)


def _traces_record(session: Session, project_id: int, kind: str) -> Evidence | None:
    rows = session.exec(select(Evidence).where(Evidence.project_id == project_id,
                                               Evidence.kind == kind,
                                               col(Evidence.verified))).all()
    return next((e for e in rows if e.details.get("source") == "traces"), None)


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def refresh_received(session: Session, project_id: int) -> None:
    """Bring the project's two traces records (verified observability, and cost when the
    spans carry priced usage) up to date with the spans received. One record of each per
    project, updated in place, so the evidence a gate reads stays small however long an
    app keeps sending; one indexed query when nothing is new."""
    newest = session.exec(select(func.max(ReceivedSpan.id))
                          .where(ReceivedSpan.project_id == project_id)).one()
    if newest is None:
        return
    last = _traces_record(session, project_id, "observability")
    if last is not None and (last.details.get("through_span_id", 0) >= newest
                             or utcnow() - _aware(last.checked_at) < REFRESH_EVERY):
        return
    spans = list(session.exec(select(ReceivedSpan)
                              .where(ReceivedSpan.project_id == project_id)).all())
    details = traces_summary(spans)
    details["how"] = (f"the coach received {details['spans']} spans in {details['traces']} "
                      f"traces from {', '.join(details['services'][:3])}")
    now = utcnow()
    _upsert(session, last, project_id, "observability", details, now)
    cost = details["cost"]
    if cost and cost["per_request_mean_usd"] is not None:
        _upsert(session, _traces_record(session, project_id, "cost_tracking"), project_id,
                "cost_tracking", {"source": "traces", "cost_usd": cost["per_request_mean_usd"],
                                  "per": "request", **cost,
                                  "how": f"measured from {cost['requests_priced']} traces the "
                                         "coach received"}, now)
    session.flush()


def _upsert(session: Session, row: Evidence | None, project_id: int, kind: str,
            details: dict[str, Any], now: datetime) -> None:
    if row is None:
        row = Evidence(project_id=project_id, kind=kind, verified=True, ok=True)
    row.details, row.checked_at = details, now
    session.add(row)
