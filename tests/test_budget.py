"""The daily spend cap with a Claude model behind the local Messages-API server: a call
that could pass the cap is never sent, near the cap the prompt is counted exactly, and
the learner is told why and how to raise the limit."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import pytest
from sqlmodel import select

from agent.claude import ClaudeModel
from agent.graph import system_prompt
from agent.offline import OfflineCoach
from agent.session import Coach
from agent.steps import step_tools
from evals.messages_api import MessagesAPI, text_reply, tool_reply
from memory.checkpoints import open_checkpointer
from memory.models import LedgerEntry, TranscriptEntry
from memory.store import open_engine, session_scope
from seam.model import Model, ModelRequest
from tools import TOOLS

MODEL = "claude-sonnet-5-5"
MILLION = Decimal(1_000_000)
# claude-sonnet-5-5: the dearest prompt rate is the 1-hour cache write; then output; and
# US-only inference could multiply every rate by 1.1.
DEAREST_PROMPT, OUTPUT, US_ONLY = Decimal(4), Decimal(10), Decimal("1.1")
MAX_TOKENS = 2048  # what the coach asks for per call


@pytest.fixture
def api() -> Iterator[MessagesAPI]:
    with MessagesAPI() as server:
        yield server


def claude(api: MessagesAPI, name: str = MODEL) -> ClaudeModel:
    client = anthropic.Anthropic(api_key="test-key", base_url=api.base_url, max_retries=0,
                                 timeout=10)
    return ClaudeModel(name, client=client)


@contextmanager
def budget_coach(url: str, model: Model, budget_usd: Decimal | None,
                 user_prices: Path | None = None) -> Iterator[Coach]:
    engine = open_engine(url)
    try:
        with open_checkpointer(url) as saver:
            yield Coach(engine, saver, user="ann", model=model, budget_usd=budget_usd,
                        user_prices=user_prices)
    finally:
        engine.dispose()


def ledger(coach: Coach) -> list[LedgerEntry]:
    with session_scope(coach.engine) as s:
        return list(s.exec(select(LedgerEntry).order_by(LedgerEntry.id)).all())  # type: ignore[arg-type]


def spent(coach: Coach) -> Decimal:
    return sum((r.cost_usd or Decimal(0) for r in ledger(coach)), Decimal(0))


def paths(api: MessagesAPI) -> list[str]:
    return [r["path"] for r in api.requests]


def first_request(text: str) -> ModelRequest:
    """What the coach sends first on a new thread, before there is a project."""
    return ModelRequest(system=system_prompt(None, ""),
                        tools=[TOOLS[name].schema() for name in step_tools(None)],
                        messages=[{"role": "user", "content": [{"type": "text", "text": text}]}],
                        records={"project": None})


def worst_case(prompt_tokens: int | Decimal) -> Decimal:
    return (Decimal(prompt_tokens) * DEAREST_PROMPT + MAX_TOKENS * OUTPUT) / MILLION * US_ONLY


def test_a_call_that_could_pass_the_cap_is_not_sent(sqlite_url, api):
    # 2048 output tokens alone could cost $0.02, twenty times this budget.
    with budget_coach(sqlite_url, claude(api), Decimal("0.001")) as coach:
        thread = coach.thread()
        api.queue(text_reply("never sent"))
        result = coach.turn(thread, "hello")

        assert api.message_requests == []
        assert result.error is not None
        assert "budget" in result.error and "not sent" in result.error
        assert "COACH_BUDGET_USD" in result.error and "COACH_BUDGET_USD" in result.reply
        assert "$0.001" in result.error  # the limit as set, not rounded to $0.00
        # Nothing was spent, and nothing is recorded as spent.
        assert result.cost_usd == 0 and spent(coach) == 0
        assert all(r.cost_usd in (None, 0) for r in ledger(coach))
        # The learner's message is kept, with the reason.
        with session_scope(coach.engine) as s:
            entries = s.exec(select(TranscriptEntry)).all()
        assert [e.role for e in entries] == ["user", "error"]


def test_with_enough_budget_the_call_goes_through_without_a_count(sqlite_url, api):
    with budget_coach(sqlite_url, claude(api), Decimal("1.00")) as coach:
        thread = coach.thread()
        api.queue(text_reply("Hello! What problem do you want to solve?"))
        result = coach.turn(thread, "hello")

    assert result.error is None
    assert result.reply == "Hello! What problem do you want to solve?"
    # Far from the cap a cheap upper bound is enough: no count_tokens request.
    assert paths(api) == ["/v1/messages"]
    (row,) = ledger(coach)
    assert row.status == "ok" and row.cost_usd is not None and row.cost_usd > 0


def test_near_the_cap_the_prompt_is_counted_exactly_before_sending(sqlite_url, api):
    model = claude(api)
    exact = model.count_tokens(first_request("hello"))
    api.requests.clear()
    # The coach's cheap bound counts 2 characters a token, about twice the exact count:
    # a limit half way between the two worst cases needs the exact count to pass.
    limit = worst_case(Decimal(exact) * Decimal("1.5"))
    assert worst_case(exact) < limit
    with budget_coach(sqlite_url, model, limit) as coach:
        thread = coach.thread()
        api.queue(text_reply("Hello!"))
        result = coach.turn(thread, "hello")

    assert result.error is None and result.reply == "Hello!"
    assert paths(api) == ["/v1/messages/count_tokens", "/v1/messages"]
    counted, sent = (r["body"] for r in api.requests)
    # It counted the prompt that was then sent, the coach's records included.
    assert (counted["system"], counted["tools"], counted["messages"]) == \
        (sent["system"], sent["tools"], sent["messages"])
    assert counted["messages"][-1]["content"][-1]["text"].startswith("The coach's records")


def test_spend_over_a_loop_of_turns_stays_within_the_cap(sqlite_url, api):
    limit = Decimal("0.08")
    # Every call uses most of its output allowance: about $0.02 a call, two calls a turn.
    usage = {"input_tokens": 800, "output_tokens": 2000, "cache_read_input_tokens": 0,
             "cache_creation_input_tokens": 0}
    call_cost = (800 * Decimal(2) + 2000 * OUTPUT) / MILLION
    results = []
    with budget_coach(sqlite_url, claude(api), limit) as coach:
        thread = coach.thread()
        for i in range(6):
            api.script.clear()
            api.queue(tool_reply("get_portfolio", {}, usage=usage),
                      text_reply(f"Reply {i}", usage=usage))
            results.append(coach.turn(thread, f"Message {i}"))
        rows = ledger(coach)
        total = spent(coach)

    assert [r.cost_usd for r in rows] == [call_cost] * len(rows)
    assert total == call_cost * len(api.message_requests)
    # The cap was reached (some calls were refused) but never passed.
    assert total <= limit < total + call_cost * 2
    largest_prompt = max(len(json.dumps(b)) for b in api.message_requests) // 2
    assert total <= limit + worst_case(largest_prompt)
    refused = [r for r in results if r.error]
    assert refused and all("COACH_BUDGET_USD" in r.error for r in refused)
    assert not any(r.error for r in results[:results.index(refused[0])])
    # Once refused, nothing more is sent: the server's last request is an exact count.
    assert paths(api)[-1] == "/v1/messages/count_tokens"
    assert "/v1/messages/count_tokens" in paths(api)


def test_the_offline_model_is_never_blocked(sqlite_url):
    with budget_coach(sqlite_url, OfflineCoach(), Decimal(0)) as coach:
        thread = coach.thread()
        results = [coach.turn(thread, text) for text in
                   ("hello", "Title: Handover Helper", "status", "help")]

    assert [r.error for r in results] == [None] * 4
    assert all(r.cost_usd == 0 for r in results)
    assert ledger(coach) and all(r.cost_usd == 0 for r in ledger(coach))


def test_an_unknown_model_with_a_budget_is_refused(sqlite_url, api):
    with budget_coach(sqlite_url, claude(api, "claude-nova-9"), Decimal("5.00")) as coach:
        thread = coach.thread()
        api.queue(text_reply("never sent"))
        result = coach.turn(thread, "hello")

    assert api.requests == []
    assert result.error is not None and "claude-nova-9" in result.error
    assert "prices.json" in result.error and "COACH_BUDGET_USD=none" in result.error
    assert spent(coach) == 0


def test_a_price_added_in_coach_home_lets_an_unknown_model_run(sqlite_url, api, coach_home):
    prices: dict[str, Any] = {"models": [{"ids": ["claude-nova-9"], "periods": [
        {"from": "2000-01-01", "input": "1", "cache_write_5m": "1.25", "cache_write_1h": "2",
         "cache_read": "0.10", "output": "5"}]}]}
    path = Path(coach_home) / "prices.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(prices))
    with budget_coach(sqlite_url, claude(api, "claude-nova-9"), Decimal("5.00"), path) as coach:
        thread = coach.thread()
        api.queue(text_reply("Hello!", usage={"input_tokens": 1000, "output_tokens": 100}))
        result = coach.turn(thread, "hello")

    assert result.error is None
    assert result.cost_usd == (1000 * Decimal(1) + 100 * Decimal(5)) / MILLION
