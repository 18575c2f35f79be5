"""Every model call goes through the one builder (agent/stack.py): for each purpose the product
calls a model for — coaching, post-mortem drafting, paid evals, the judge — a call leaves a
ledger row and a `chat` span, and a spent budget stops it before anything is sent. All through
the real anthropic SDK against the local Messages API."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import anthropic
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import Engine
from sqlmodel import select

from agent.claude import ClaudeModel
from agent.commands.evaluate import judge_for, learner_budget
from agent.drafting import drafting_context
from agent.session import Coach
from agent.settings import Settings
from agent.stack import PURPOSES, build_model
from evals.dataset import load_cases
from evals.harness import Outcome, run_case
from evals.messages_api import MessagesAPI, text_reply
from memory.checkpoints import open_checkpointer
from memory.models import LedgerEntry, Project
from memory.store import open_engine, session_scope
from memory.users import ensure_user
from seam.model import ModelRequest, ModelResponse
from seam.pricing import Usage, price_table
from tests.doubles import ScriptedModel
from tools.bundle import evidence_bundle

MODEL = "claude-haiku-4-5"


@dataclass
class Site:
    """One learner's world: settings, store, a local Messages API, an in-memory tracer."""

    settings: Settings
    engine: Engine
    user_id: int
    api: MessagesAPI
    spans: InMemorySpanExporter
    provider: TracerProvider

    def claude(self) -> ClaudeModel:
        client = anthropic.Anthropic(api_key="test-key", base_url=self.api.base_url,
                                     max_retries=0)
        return ClaudeModel(MODEL, client=client)

    def spend(self, amount: str) -> None:
        with session_scope(self.engine) as s:
            s.add(LedgerEntry(user_id=self.user_id, model="seed", purpose="seed",
                              cost_usd=Decimal(amount), created_at=datetime.now(UTC)))

    def rows(self, purpose: str) -> list[LedgerEntry]:
        with session_scope(self.engine) as s:
            return list(s.exec(select(LedgerEntry).where(LedgerEntry.purpose == purpose)).all())

    def chat_spans(self) -> list[Any]:
        return [s for s in self.spans.get_finished_spans() if s.name == f"chat {MODEL}"]


@pytest.fixture
def site(tmp_path, monkeypatch, coach_home) -> Iterator[Site]:
    url = f"sqlite:///{tmp_path / 'coach.db'}"
    settings = Settings.load(env={"COACH_HOME": coach_home, "COACH_DATABASE_URL": url,
                                  "COACH_USER": "ann", "COACH_BUDGET_USD": "1.00"})
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    engine = open_engine(url)
    with MessagesAPI() as api:
        # The judge builds its model from the environment, as `coach eval --judge` does.
        monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", api.base_url)
        yield Site(settings, engine, ensure_user(engine, "ann"), api, exporter, provider)
    engine.dispose()


def call_coach(site: Site) -> None:
    with open_checkpointer(site.settings.database_url) as saver:
        coach = Coach(site.engine, saver, user="ann", model=site.claude(),
                      tracer_provider=site.provider, budget_usd=site.settings.budget_usd)
        coach.turn(coach.thread(), "hello")


def call_postmortem(site: Site) -> None:
    ctx = drafting_context(site.settings, site.engine, site.user_id, site.claude(),
                           tracer_provider=site.provider)
    with session_scope(site.engine) as s:
        project = Project(user_id=site.user_id, title="Handover Helper", step="postmortem")
        s.add(project)
        s.flush()
        bundle = evidence_bundle(s, project)
    assert ctx.drafter is not None
    try:
        ctx.drafter(bundle)
    except Exception as exc:  # a refused call reaches the learner as a tool error
        assert "budget" in str(exc)


def call_eval(site: Site) -> None:
    case = load_cases(pattern="status-help-portfolio")[0]
    outcome = run_case(case, site.claude(), budget=learner_budget(
        site.settings, site.engine, site.user_id))
    # The case ran on its own database; `coach eval` copies its rows to the learner's ledger.
    from telemetry.ledger import record_spend

    record_spend(site.engine, site.user_id, outcome.ledger)
    for span in outcome.spans:  # the case's own tracer, which the graders read
        site.spans.export([span])


def call_judge(site: Site) -> None:
    judge = judge_for(MODEL, site.settings, site.engine, site.user_id, site.provider)
    outcome = Outcome(load_cases(pattern="vague-problem")[0])
    judge.evaluate(outcome)


CALLS: dict[str, Callable[[Site], None]] = {
    "coach": call_coach, "postmortem": call_postmortem, "eval": call_eval, "judge": call_judge}


def test_the_purposes_enumerated_are_the_builders() -> None:
    assert tuple(CALLS) == PURPOSES


@pytest.mark.parametrize("purpose", PURPOSES)
def test_each_purpose_is_metered_traced_and_budgeted(site: Site, purpose: str) -> None:
    verdict = {"specific": 4, "actionable": 4, "honest": 4, "why": "ok"}
    site.api.default = text_reply(json.dumps(verdict))
    CALLS[purpose](site)

    rows = site.rows(purpose)
    assert rows and all(r.model == MODEL and r.status == "ok" for r in rows)
    assert all(r.cost_usd is not None and r.cost_usd > 0 for r in rows)
    spans = site.chat_spans()
    assert spans and {s.attributes["coach.purpose"] for s in spans} == {purpose}
    assert {s.attributes["llm.cost.total"] for s in spans} == {float(r.cost_usd or 0)
                                                                for r in rows}
    sent = len(site.api.message_requests)

    # The day's budget is spent: the next call of the same kind is not sent.
    site.spend("5.00")
    CALLS[purpose](site)
    assert len(site.api.message_requests) == sent
    assert len(site.rows(purpose)) == len(rows)
    refused = [s for s in site.chat_spans() if s.attributes.get("error.type")]
    assert refused and {s.attributes["error.type"] for s in refused} == {"budget_exceeded"}


def test_the_cost_travels_on_the_response(engine: Engine) -> None:
    """No side channel: what the ledger priced is on the response the caller gets back."""
    user_id = ensure_user(engine, "ann")

    class Priced(ScriptedModel):
        name = MODEL

        def complete(self, request: ModelRequest) -> ModelResponse:
            return ModelResponse(content=[{"type": "text", "text": "hi"}],
                                 stop_reason="end_turn", model=MODEL,
                                 usage=Usage(input_tokens=1000, output_tokens=100))

    provider = TracerProvider()
    model = build_model(Priced(), engine, user_id, purpose="coach", tracer_provider=provider)
    response = model.complete(ModelRequest(system="s", messages=[], tools=[],
                                           metadata={"user_id": user_id}))
    expected = price_table().cost(MODEL, Usage(input_tokens=1000, output_tokens=100),
                                  datetime.now(UTC).date())
    assert response.cost_usd == expected and expected is not None and expected > 0
    with session_scope(engine) as s:
        row = s.get(LedgerEntry, response.ledger_id)
        assert row is not None and row.cost_usd == expected and row.purpose == "coach"
