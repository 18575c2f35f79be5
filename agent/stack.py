"""The one place a model stack is built.

Every model call the product makes — coaching, post-mortem drafting, evals, the judge,
the LangGraph dev server's graph — goes through `build_model`, so none can be left
unmetered, unbudgeted or untraced by accident:

    InstrumentedModel (span + metrics) → BudgetedModel (daily cap) → MeteredModel (ledger)
        → the model itself (Claude or the offline coach)

The budget sits outside the ledger so a refused call costs no ledger row; the ledger
sits inside the span so its row carries the span's ids.
"""

from __future__ import annotations

import os
from decimal import Decimal

from opentelemetry import metrics, trace
from sqlalchemy import Engine

from agent.errors import CoachError
from agent.settings import Settings
from seam.model import Model
from seam.pricing import PriceTable, price_table
from telemetry.budget import Budget, BudgetedModel
from telemetry.genai import capture_content as content_capture_on
from telemetry.instrument import InstrumentedModel
from telemetry.ledger import MeteredModel
from telemetry.tracing import coach_provider, default_meter_provider

PURPOSES = ("coach", "postmortem", "eval", "judge")


def make_model(name: str) -> Model:
    """The bare model for a name: `offline`, or an Anthropic model id."""
    from agent.offline import OfflineCoach

    if name == "offline":
        return OfflineCoach()
    import anthropic  # loaded only when a Claude model is asked for

    from agent.claude import ClaudeModel

    if not (os.environ.get("ANTHROPIC_API_KEY") or os.environ.get("ANTHROPIC_AUTH_TOKEN")):
        raise CoachError(f"model {name!r} needs ANTHROPIC_API_KEY; without one, use the offline"
                         " coach (--model offline)")
    try:
        return ClaudeModel(name)
    except anthropic.AnthropicError as exc:
        raise CoachError(f"cannot use model {name!r}: {exc}") from exc


def build_model(inner: Model, engine: Engine, user_id: int, *, purpose: str,
                prices: PriceTable | None = None, budget_usd: Decimal | None = None,
                budget: Budget | None = None,
                tracer_provider: trace.TracerProvider | None = None,
                meter_provider: metrics.MeterProvider | None = None,
                capture_content: bool | None = None, user: str | None = None) -> Model:
    """`inner` metered into `engine`'s ledger, held to the learner's daily budget (a
    `budget_usd` limit, or a `budget` kept elsewhere, as evals do), and traced."""
    prices = prices or price_table()
    model: Model = MeteredModel(inner, engine, prices)
    if budget is None and budget_usd is not None:
        budget = Budget(budget_usd, engine, user_id, prices)
    if budget is not None:
        model = BudgetedModel(model, budget)
    capture = content_capture_on() if capture_content is None else capture_content
    return InstrumentedModel(model, tracer_provider or coach_provider(engine),
                             meter_provider or default_meter_provider(),
                             capture_content=capture, user=user, purpose=purpose)


def model_for(settings: Settings, engine: Engine, user_id: int, *, purpose: str,
              inner: Model | None = None, name: str | None = None,
              tracer_provider: trace.TracerProvider | None = None) -> Model:
    """`build_model` with what the settings say: the model, the user's price file, the
    daily budget."""
    return build_model(inner or make_model(name or settings.model), engine, user_id,
                       purpose=purpose, prices=user_prices(settings),
                       budget_usd=settings.budget_usd, tracer_provider=tracer_provider,
                       user=settings.user)


def user_prices(settings: Settings) -> PriceTable:
    """The shipped price table with the learner's `$COACH_HOME/prices.json` on top."""
    return price_table(settings.home / "prices.json")
