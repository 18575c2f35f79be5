"""Reading the local span store: a learner's traces a page at a time, one trace's spans,
retention.

A trace belongs to the learner named on its root span (`invoke_agent coach`); another
learner's trace id is answered exactly like an unknown one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import islice
from typing import Any

from sqlalchemy import Engine, and_, delete, or_
from sqlmodel import Session, col, select

from memory.models import StoredSpan
from memory.paging import make_cursor, read_cursor
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


@dataclass(frozen=True)
class TraceFilter:
    """Which turns a trace list keeps: only failed ones, at least `slow_ms` long, at least
    `min_cost_usd` expensive (a turn of unknown cost is never "expensive")."""

    errors: bool = False
    slow_ms: float | None = None
    min_cost_usd: float | None = None

    @property
    def keeps_all(self) -> bool:
        return self == EVERY_TRACE

    def keeps(self, trace: dict[str, Any]) -> bool:
        if self.errors and not trace["error"]:
            return False
        if self.slow_ms is not None and trace["duration_ms"] < self.slow_ms:
            return False
        cost = trace["cost_usd"]
        return self.min_cost_usd is None or (cost is not None and cost >= self.min_cost_usd)


EVERY_TRACE = TraceFilter()
# Turns examined per page at most: a filter that matches little must not make one request
# read the whole store. The page then ends early, with a cursor to look further back from.
SCAN = 500
# With a filter, turns are read this many at a time until the page is full.
BATCH = 100


@dataclass
class TracePage:
    traces: list[dict[str, Any]]
    next_cursor: str | None  # null: nothing older is left to look at


def trace_page(engine: Engine, user_id: int, limit: int = 20, cursor: str | None = None,
               only: TraceFilter = EVERY_TRACE, scan: int = SCAN) -> TracePage:
    """A page of the learner's turns, newest first (by the root span's start, then id),
    starting after `cursor`. A page may hold fewer than `limit` when the filter passed over
    `scan` turns; its `next_cursor` continues from the last turn examined, so paging
    through neither skips nor repeats one. BadCursor for a cursor of another list."""
    after: tuple[datetime, int] | None = None
    if cursor:
        when, span_id = read_cursor(cursor, "traces", datetime, int)
        after = (when, span_id)
    budget = max(scan, limit)  # an unfiltered page is never cut short
    batch = min(budget, limit if only.keeps_all else max(limit, BATCH))
    kept: list[dict[str, Any]] = []
    last = after  # the last turn examined, kept or not: where the next page starts
    with session_scope(engine) as s:
        for key, trace in islice(_turns(s, user_id, after, batch), budget):
            last = key
            if only.keeps(trace):
                kept.append(trace)
                if len(kept) == limit:
                    break
        more = last is not None and bool(_roots(s, user_id, last, 1))
    return TracePage(kept, make_cursor("traces", *last) if more and last else None)


def _turns(s: Session, user_id: int, after: tuple[datetime, int] | None,
           batch: int) -> Iterator[tuple[tuple[datetime, int], dict[str, Any]]]:
    """The learner's turns older than `after`, newest first, each with its sort key; read
    `batch` at a time, and only as far as the caller goes."""
    while True:
        roots = _roots(s, user_id, after, batch)
        for root, trace in zip(roots, _summaries(s, roots), strict=True):
            assert root.id is not None
            after = (root.start_time, root.id)
            yield after, trace
        if len(roots) < batch:
            return


def recent_traces(engine: Engine, user_id: int, limit: int = 20) -> list[dict[str, Any]]:
    """The learner's latest turns, newest first, with what each cost."""
    return trace_page(engine, user_id, limit).traces


def _roots(s: Session, user_id: int, after: tuple[datetime, int] | None,
           size: int) -> list[StoredSpan]:
    query = select(StoredSpan).where(StoredSpan.user_id == user_id,
                                     col(StoredSpan.parent_id).is_(None))
    if after is not None:
        when, span_id = after
        query = query.where(or_(col(StoredSpan.start_time) < when,
                                and_(col(StoredSpan.start_time) == when,
                                     col(StoredSpan.id) < span_id)))
    return list(s.exec(query.order_by(col(StoredSpan.start_time).desc(),
                                      col(StoredSpan.id).desc()).limit(size)).all())


def _summaries(s: Session, roots: list[StoredSpan]) -> list[dict[str, Any]]:
    """Each root's turn with what it cost, from every span stored under its trace."""
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
