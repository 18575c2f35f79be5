"""The daily spend cap: a call that could pass it is not sent."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time
from decimal import Decimal

from sqlalchemy import Engine, func
from sqlmodel import select

from memory.models import LedgerEntry
from memory.store import session_scope
from seam.model import Model, ModelError, ModelRequest, ModelResponse, WrapperModel
from seam.pricing import MILLION, PriceTable


class BudgetExceeded(ModelError):
    def __init__(self, message: str):
        super().__init__(message, kind="budget_exceeded")


def start_of_day() -> datetime:
    return datetime.combine(datetime.now(UTC).date(), time.min, tzinfo=UTC)


@dataclass
class Budget:
    limit: Decimal
    engine: Engine
    user_id: int
    prices: PriceTable

    def spent_today(self) -> Decimal:
        with session_scope(self.engine) as s:
            total = s.exec(select(func.sum(LedgerEntry.cost_usd)).where(
                LedgerEntry.user_id == self.user_id,
                LedgerEntry.created_at >= start_of_day())).one()
        return Decimal(total or 0)

    def worst_case(self, model: str, prompt_tokens: int, max_tokens: int) -> Decimal | None:
        """Every prompt token at the dearest input rate, plus max_tokens of output."""
        if not self.prices.knows(model):
            return None
        rates = self.prices.rates(model, datetime.now(UTC).date(), prompt_tokens)
        prompt_rates = [r for k in ("input", "cache_write_5m", "cache_write_1h")
                        if (r := rates[k]) is not None]
        if not prompt_rates or rates["output"] is None:
            return None
        cost = (prompt_tokens * max(prompt_rates) + max_tokens * rates["output"]) / MILLION
        if self.prices.models[model].get("us_geo"):
            cost *= self.prices.multipliers["us_geo"]
        return cost

    def check(self, model: str, request: ModelRequest,
              count: Callable[[ModelRequest], int | None] | None) -> None:
        left = self.limit - self.spent_today()
        # A cheap upper bound first (2 characters a token); count exactly only when close.
        rough = len(json.dumps([request.system, request.tools, request.messages,
                                request.records], default=str)) // 2
        worst = self.worst_case(model, rough, request.max_tokens)
        if worst is None:
            raise BudgetExceeded(
                f"no price for model {model!r}, so the spend cap cannot be enforced: add it to "
                "$COACH_HOME/prices.json, or set COACH_BUDGET_USD=none")
        if worst <= left:
            return
        if count is not None:
            counted = count(request)
            if counted is not None:
                worst = self.worst_case(model, counted, request.max_tokens) or worst
        if worst > left:
            raise BudgetExceeded(
                f"today's budget is ${self.limit:f} and ${max(left, Decimal(0)):.4f} is left;"
                f" this call could cost up to ${worst:.4f}, so it was not sent. Raise "
                "COACH_BUDGET_USD (or set it to none); the budget resets at midnight UTC")


class BudgetedModel(WrapperModel):
    """Refuses, before it is sent, a call that could take the learner past the day's cap."""

    def __init__(self, inner: Model, budget: Budget):
        super().__init__(inner)
        self.budget = budget

    def complete(self, request: ModelRequest) -> ModelResponse:
        self.budget.check(self.name, request, self.count_tokens)
        return self.inner.complete(request)
