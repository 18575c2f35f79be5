"""The LLM-as-judge grader, through the real anthropic client and a local Messages API."""

from __future__ import annotations

import json
from decimal import Decimal

import anthropic
from sqlmodel import select

from agent.claude import ClaudeModel
from evals.dataset import load_cases
from evals.harness import Outcome
from evals.judge import RubricJudge
from evals.messages_api import MessagesAPI, text_reply
from memory.models import LedgerEntry
from memory.store import session_scope
from memory.users import ensure_user
from telemetry.ledger import MeteredModel


def _judge(api: MessagesAPI, engine) -> RubricJudge:
    client = anthropic.Anthropic(api_key="test-key", base_url=api.base_url, max_retries=0)
    model = MeteredModel(ClaudeModel("claude-haiku-4-5", client=client), engine)
    return RubricJudge(model, ensure_user(engine, "evaluator"))


def _outcome() -> Outcome:
    case = load_cases(pattern="vague-problem")[0]
    outcome = Outcome(case)
    outcome.results = []
    return outcome


def test_judge_scores_replies_and_records_its_cost_as_judge(engine):
    verdict = {"specific": 5, "actionable": 4, "honest": 4, "why": "clear next step"}
    usage = {"input_tokens": 1000, "output_tokens": 40, "cache_read_input_tokens": 0,
             "cache_creation_input_tokens": 0}
    with MessagesAPI() as api:
        api.queue(text_reply(json.dumps(verdict), usage=usage))
        score = _judge(api, engine).evaluate(_outcome())
        sent = api.message_requests[0]
    assert score.passed and score.detail.startswith("4.3/5")
    assert "specific" in sent["system"][0]["text"] and "tools" not in sent
    assert "Persona:" in sent["messages"][0]["content"][0]["text"]
    with session_scope(engine) as s:
        row = s.exec(select(LedgerEntry)).one()
    assert row.purpose == "judge"
    # claude-haiku-4-5: $1 per million input, $5 per million output.
    assert row.cost_usd == Decimal("0.001") + Decimal("0.0002")


def test_a_low_or_unreadable_verdict_fails_the_grader(engine):
    with MessagesAPI() as api:
        api.queue(text_reply('{"specific": 2, "actionable": 2, "honest": 3, "why": "vague"}'),
                  text_reply("I would rather not grade this."))
        judge = _judge(api, engine)
        low, unreadable = judge.evaluate(_outcome()), judge.evaluate(_outcome())
    assert not low.passed and low.detail.startswith("2.3/5")
    assert not unreadable.passed and unreadable.detail.startswith("judge failed")
