"""The JSON behind the cost and trace dashboards, for the caller only."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query
from sqlalchemy import Engine
from sqlmodel import col, select

from agent.web.api import MAX_PAGE, PAGE, Me, W
from agent.web.schemas import ERRORS, BudgetOut, CostReport
from memory.models import LedgerEntry
from memory.store import session_scope
from seam.pricing import price_table
from telemetry.budget import Budget, start_of_day
from telemetry.costs import TOKENS, cost_report
from telemetry.traces import TraceFilter, TraceNotFound, totals, trace_page, trace_spans

router = APIRouter(responses=ERRORS)
TRACE_ID = Path(pattern=r"^[0-9a-fA-F]{32}$")


@router.get("/api/costs", tags=["costs"], response_model=CostReport)
def costs(me: Me, w: W,
          by: Literal["model", "day", "thread", "project", "purpose"] = "model",
          since: date | None = None) -> dict[str, Any]:
    """What the coach's model calls for you cost, grouped as in `coach costs --json`."""
    start = datetime.combine(since, datetime.min.time(), tzinfo=UTC) if since else None
    return cost_report(w.engine, by=by, user_id=me.id, since=start,
                       prices=price_table(w.settings.home / "prices.json"))


def daily_series(engine: Engine, user_id: int, split: str, days: int) -> dict[str, Any]:
    """Cost, calls and tokens per UTC day, one series per model or purpose."""
    first = datetime.now(UTC).date() - timedelta(days=days - 1)
    since = datetime.combine(first, datetime.min.time(), tzinfo=UTC)
    with session_scope(engine) as s:
        rows = s.exec(select(LedgerEntry).where(LedgerEntry.user_id == user_id,
                                                col(LedgerEntry.created_at) >= since)).all()
    labels = [(first + timedelta(days=i)).isoformat() for i in range(days)]
    index = {d: i for i, d in enumerate(labels)}
    series: dict[str, dict[str, Any]] = defaultdict(lambda: {
        "cost_usd": [Decimal(0)] * days, "calls": [0] * days, "tokens": [0] * days,
        "estimated_tokens": [0] * days,
        "unknown_cost_calls": 0})
    for row in rows:
        i = index.get(row.created_at.date().isoformat())
        if i is None:
            continue
        entry = series[getattr(row, split)]
        entry["calls"][i] += 1
        # The offline coach's counts are guesses: a series of their own, never "tokens".
        entry["estimated_tokens" if row.estimated else "tokens"][i] += sum(
            getattr(row, t) for t in TOKENS)
        if row.cost_usd is None:
            entry["unknown_cost_calls"] += 1
        else:
            entry["cost_usd"][i] += row.cost_usd
    return {"split": split, "days": labels, "series": [
        {"key": key, **entry, "cost_usd": [float(c) for c in entry["cost_usd"]]}
        for key, entry in sorted(series.items())]}


@router.get("/api/costs/daily", tags=["costs"])
def costs_daily(me: Me, w: W, split: Literal["model", "purpose"] = "model",
                days: Annotated[int, Query(ge=1, le=366)] = 14) -> dict[str, Any]:
    """Spend over time: per day, one series per model (or purpose)."""
    return daily_series(w.engine, me.id, split, days)


@router.get("/api/budget", tags=["costs"], response_model=BudgetOut)
def budget(me: Me, w: W) -> dict[str, Any]:
    """Today's spend against the daily cap (COACH_BUDGET_USD); it resets at midnight UTC."""
    limit = w.settings.budget_usd
    prices = price_table(w.settings.home / "prices.json")
    spent = Budget(limit or Decimal(0), w.engine, me.id, prices).spent_today()
    return {"limit_usd": None if limit is None else float(limit),
            "spent_today_usd": float(spent),
            "left_usd": None if limit is None else float(max(limit - spent, Decimal(0))),
            "resets_at": (start_of_day() + timedelta(days=1)).isoformat()}


@router.get("/api/traces", tags=["traces"])
def traces(me: Me, w: W, limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = PAGE,
           cursor: Annotated[str | None, Query(max_length=200)] = None,
           errors: bool = False,
           slow_ms: Annotated[float | None, Query(ge=0, allow_inf_nan=False)] = None,
           min_cost_usd: Annotated[float | None, Query(ge=0, allow_inf_nan=False)] = None,
           ) -> dict[str, Any]:
    """Your turns, newest first, a page at a time (pass `next_cursor` back as `cursor`);
    filters: only errors, at least `slow_ms` long, at least `min_cost_usd` expensive. A
    filtered page may come back short, even empty, with a `next_cursor`: each request looks
    at a bounded number of turns, and the cursor goes on from the last one looked at."""
    page = trace_page(w.engine, me.id, limit, cursor,
                      TraceFilter(errors=errors, slow_ms=slow_ms, min_cost_usd=min_cost_usd))
    return {"traces": page.traces, "next_cursor": page.next_cursor}


@router.get("/api/traces/{trace_id}", tags=["traces"])
def trace(me: Me, w: W, trace_id: Annotated[str, TRACE_ID]) -> dict[str, Any]:
    """One turn's spans in start order, with durations, tokens and cost per span."""
    try:
        spans = trace_spans(w.engine, me.id, trace_id)
    except TraceNotFound as exc:
        raise HTTPException(404, "no trace of yours has that id") from exc
    return {"trace_id": trace_id.lower(), **totals(spans), "spans": spans}
