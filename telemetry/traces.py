"""Reading the local span store: a learner's recent traces, one trace's spans, retention.

A trace belongs to the learner named on its root span (`invoke_agent coach`); another
learner's trace id is answered exactly like an unknown one.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, delete
from sqlmodel import col, select

from memory.models import StoredSpan
from memory.store import session_scope


class TraceNotFound(LookupError):
    pass


def _iso(value: datetime) -> str:
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


def span_json(span: StoredSpan) -> dict[str, Any]:
    return {
        "trace_id": span.trace_id, "span_id": span.span_id, "parent_id": span.parent_id,
        "name": span.name, "kind": span.kind, "start_time": _iso(span.start_time),
        "end_time": _iso(span.end_time), "duration_ms": round(span.duration_us / 1000, 3),
        "status": span.status, "status_message": span.status_message,
        "attributes": span.attributes,
    }


def is_model_call(span: dict[str, Any] | StoredSpan) -> bool:
    attributes = span["attributes"] if isinstance(span, dict) else span.attributes
    return bool(attributes.get("gen_ai.operation.name") == "chat")


def totals(spans: list[StoredSpan] | list[dict[str, Any]]) -> dict[str, Any]:
    """Model calls, tokens and cost of a set of spans (cost None when any is unknown)."""
    calls = [s["attributes"] if isinstance(s, dict) else s.attributes
             for s in spans if is_model_call(s)]
    cost: Decimal | None = None
    if not any(a.get("coach.cost.unknown") for a in calls):
        cost = sum((Decimal(str(a.get("llm.cost.total", 0))) for a in calls), Decimal(0))
    return {
        "model_calls": len(calls),
        "input_tokens": sum(int(a.get("gen_ai.usage.input_tokens", 0)) for a in calls),
        "output_tokens": sum(int(a.get("gen_ai.usage.output_tokens", 0)) for a in calls),
        # The offline coach's guesses, kept apart from real usage (never summed into it).
        "estimated_input_tokens": sum(int(a.get("coach.usage.estimated.input_tokens", 0))
                                      for a in calls),
        "estimated_output_tokens": sum(int(a.get("coach.usage.estimated.output_tokens", 0))
                                       for a in calls),
        "cost_usd": None if cost is None else float(cost),
    }


def recent_traces(engine: Engine, user_id: int, limit: int = 20) -> list[dict[str, Any]]:
    """The learner's latest turns, newest first, with what each cost."""
    with session_scope(engine) as s:
        roots = list(s.exec(
            select(StoredSpan)
            .where(StoredSpan.user_id == user_id, col(StoredSpan.parent_id).is_(None))
            .order_by(col(StoredSpan.start_time).desc(), col(StoredSpan.id).desc())
            .limit(limit)).all())
        by_trace: dict[str, list[StoredSpan]] = defaultdict(list)
        if roots:
            for span in s.exec(select(StoredSpan).where(
                    col(StoredSpan.trace_id).in_([r.trace_id for r in roots]))).all():
                by_trace[span.trace_id].append(span)
    out = []
    for root in roots:
        spans = by_trace[root.trace_id]
        out.append({
            "trace_id": root.trace_id, "name": root.name, "start_time": _iso(root.start_time),
            "duration_ms": round(root.duration_us / 1000, 3), "thread_id": root.thread_id,
            "step": root.attributes.get("coach.step"), **totals(spans),
            "error": any(sp.status == "error" for sp in spans), "spans": len(spans),
        })
    return out


def trace_spans(engine: Engine, user_id: int, trace_id: str) -> list[dict[str, Any]]:
    """Every stored span of one of the learner's traces, in start order."""
    trace_id = trace_id.strip().lower()
    with session_scope(engine) as s:
        spans = list(s.exec(select(StoredSpan).where(StoredSpan.trace_id == trace_id)
                            .order_by(col(StoredSpan.start_time), col(StoredSpan.id))).all())
    roots = [sp for sp in spans if sp.parent_id is None]
    if not roots or any(r.user_id != user_id for r in roots):
        raise TraceNotFound(f"no trace {trace_id} in your traces (see `coach traces list`)")
    return [span_json(sp) for sp in spans]


def prune_spans(engine: Engine, keep_days: int, now: datetime | None = None) -> int:
    """Delete stored spans (every learner's) that started more than `keep_days` days ago."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=keep_days)
    with session_scope(engine) as s:
        result = s.execute(delete(StoredSpan).where(col(StoredSpan.start_time) < cutoff))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
