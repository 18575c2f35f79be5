"""The ledger: one row per model call the coach makes, with its exact cost."""

from __future__ import annotations

import time
from datetime import date
from decimal import Decimal
from typing import Any

from opentelemetry import trace
from sqlalchemy import Engine

from memory.models import LedgerEntry
from memory.store import session_scope
from seam.model import Model, ModelError, ModelRequest, ModelResponse, WrapperModel
from seam.pricing import PriceTable, Usage, price_table


class MeteredModel(WrapperModel):
    """Wraps a model so that every call, failed or not, lands in the ledger; the cost and
    the ledger row's id ride back on the response."""

    def __init__(self, inner: Model, engine: Engine, prices: PriceTable | None = None, *,
                 purpose: str = "coach"):
        super().__init__(inner)
        self.engine = engine
        self.prices = prices or price_table()
        self.purpose = purpose

    def complete(self, request: ModelRequest) -> ModelResponse:
        started = time.perf_counter()
        try:
            response = self.inner.complete(request)
        except ModelError as exc:
            self._record(request, Usage(), None, started, status="error", error=exc)
            raise
        response.cost_usd = self.prices.cost(response.model or self.name, response.usage,
                                             date.today())
        response.ledger_id = self._record(request, response.usage, response, started)
        return response

    def _record(self, request: ModelRequest, usage: Usage, response: ModelResponse | None,
                started: float, *, status: str = "ok",
                error: ModelError | None = None) -> int | None:
        meta: dict[str, Any] = request.metadata
        span = trace.get_current_span().get_span_context()
        w5m, w1h = usage.writes()
        row = LedgerEntry(
            user_id=meta["user_id"], thread_id=meta.get("thread_id"),
            project_id=meta.get("project_id"), step=meta.get("step"),
            purpose=meta.get("purpose") or self.purpose,
            model=(response.model if response else None) or self.name,
            input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
            cache_read_input_tokens=usage.cache_read_input_tokens,
            cache_creation_input_tokens=usage.cache_creation_input_tokens,
            cache_creation_5m_input_tokens=w5m, cache_creation_1h_input_tokens=w1h,
            service_tier=usage.service_tier, inference_geo=usage.inference_geo,
            request_id=(response.request_id if response else None)
            or (error.request_id if error else None),
            trace_id=format(span.trace_id, "032x") if span.is_valid else None,
            span_id=format(span.span_id, "016x") if span.is_valid else None,
            latency_ms=int((time.perf_counter() - started) * 1000),
            status=status, error=str(error) if error else None,
            cost_usd=response.cost_usd if response else Decimal(0),
            estimated=bool(response and response.estimated),
        )
        with session_scope(self.engine) as s:
            s.add(row)
            s.flush()
            return row.id


def record_spend(engine: Engine, user_id: int, rows: list[dict[str, Any]], *,
                 purpose: str = "eval") -> None:
    """Calls made on a throwaway database (an eval case) copied into the learner's ledger."""
    with session_scope(engine) as s:
        for row in rows:
            s.add(LedgerEntry(**{**row, "user_id": user_id, "purpose": purpose,
                                 "thread_id": None, "project_id": None}))
