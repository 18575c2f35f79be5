"""The ledger: one row per model call the coach makes, with its exact cost."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from opentelemetry import trace
from sqlalchemy import Engine

from memory.models import LedgerEntry
from memory.store import session_scope
from seam.model import Model, ModelError, ModelRequest, ModelResponse
from seam.pricing import PriceTable, Usage, price_table
from telemetry.budget import Budget
from telemetry.genai import redact


@dataclass
class Call:
    """What one model call cost, for the turn that made it."""

    model: str
    usage: Usage
    cost_usd: Decimal | None
    ok: bool


class MeteredModel:
    """Wraps a model so that every call, failed or not, lands in the ledger."""

    def __init__(self, model: Model, engine: Engine, prices: PriceTable | None = None,
                 observer: Callable[[Call], None] | None = None, budget: Budget | None = None):
        self.inner = model
        self.name = model.name
        self.provider = model.provider
        self.engine = engine
        self.prices = prices or price_table()
        self.observer = observer
        # Per thread, so the tracing wrapper reads the cost of its own call, not another's.
        self._last = threading.local()
        self.budget = budget

    def complete(self, request: ModelRequest) -> ModelResponse:
        if self.budget is not None:
            self.budget.check(self.name, request, getattr(self.inner, "count_tokens", None))
        started = time.perf_counter()
        try:
            response = self.inner.complete(request)
        except ModelError as exc:
            self._record(request, Usage(), None, started, status="error", error=exc)
            raise
        cost = self.prices.cost(response.model or self.name, response.usage, date.today())
        self._record(request, response.usage, response, started, cost=cost)
        return response

    def _record(self, request: ModelRequest, usage: Usage, response: ModelResponse | None,
                started: float, *, status: str = "ok", error: ModelError | None = None,
                cost: Decimal | None = None) -> None:
        meta: dict[str, Any] = request.metadata
        span = trace.get_current_span().get_span_context()
        w5m, w1h = usage.writes()
        row = LedgerEntry(
            user_id=meta["user_id"], thread_id=meta.get("thread_id"),
            project_id=meta.get("project_id"), step=meta.get("step"),
            purpose=meta.get("purpose", "coach"),
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
            status=status, error=redact(str(error)) if error else None,
            cost_usd=cost if response else Decimal(0),
            estimated=bool(response and response.estimated),
        )
        with session_scope(self.engine) as s:
            s.add(row)
        call = Call(row.model, usage, row.cost_usd, status == "ok")
        self._last.call = call
        if self.observer:
            self.observer(call)

    @property
    def last_call(self) -> Call | None:
        """This thread's latest call as the ledger priced it: the one place a call is priced."""
        call: Call | None = getattr(self._last, "call", None)
        return call
