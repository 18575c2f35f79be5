"""The Claude model end to end: the real anthropic client against a local Messages-API
server on 127.0.0.1 (evals/messages_api.py). The SDK is never patched: its streaming,
retries, timeouts and errors run for real. Each test asserts on what the learner sees,
the stored records, the ledger, and the requests the server received."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from decimal import Decimal
from typing import Any

import anthropic
import pytest
from sqlalchemy import Engine
from sqlmodel import select

from agent.claude import ClaudeModel
from agent.session import Coach, TurnResult
from evals.messages_api import MessagesAPI, error, reply, text_reply, tool_reply
from memory.checkpoints import open_checkpointer
from memory.models import LedgerEntry, Lesson, Project, TranscriptEntry
from memory.store import open_engine, session_scope
from telemetry.costs import cost_report

MODEL = "claude-sonnet-5-5"
PROJECT = {
    "title": "Handover Helper",
    "problem": "Night-shift nurses hand over ten to twenty patients in a few minutes from "
               "handwritten notes, and abnormal vitals get lost when the ward is busy.",
    "audience": "ward nurses",
    "personal_context": "six years of night shifts",
    "success_criteria": "flags 95% of abnormal vitals",
}
RECORDS = "The coach's records"


@pytest.fixture
def api() -> Iterator[MessagesAPI]:
    with MessagesAPI() as server:
        yield server


@contextmanager
def claude_coach(url: str, api: MessagesAPI, *, model: str = MODEL, max_retries: int = 0,
                 timeout: float = 10.0, budget_usd: Decimal | None = None) -> Iterator[Coach]:
    client = anthropic.Anthropic(api_key="test-key", base_url=api.base_url,
                                 max_retries=max_retries, timeout=timeout)
    engine = open_engine(url)
    try:
        with open_checkpointer(url) as saver:
            yield Coach(engine, saver, user="ann", model=ClaudeModel(model, client=client),
                        budget_usd=budget_usd)
    finally:
        client.close()
        engine.dispose()


def rows(engine: Engine, model: type) -> list[Any]:
    with session_scope(engine) as s:
        return list(s.exec(select(model).order_by(model.id)).all())  # type: ignore[attr-defined]


def ledger(coach: Coach) -> list[LedgerEntry]:
    return rows(coach.engine, LedgerEntry)


def last_user_blocks(body: dict[str, Any]) -> list[dict[str, Any]]:
    last = body["messages"][-1]
    assert last["role"] == "user"
    return last["content"]


def breakpoints(body: dict[str, Any]) -> list[str]:
    """Where a request carries cache_control: 'tools[i]', 'system[i]', 'messages[i][j]'."""
    found = [f"tools[{i}]" for i, t in enumerate(body.get("tools") or [])
             if "cache_control" in t]
    found += [f"system[{i}]" for i, b in enumerate(body.get("system") or [])
              if "cache_control" in b]
    for i, m in enumerate(body["messages"]):
        if isinstance(m["content"], list):
            found += [f"messages[{i}][{j}]" for j, b in enumerate(m["content"])
                      if "cache_control" in b]
    return found


def create_project_turn(coach: Coach, api: MessagesAPI, thread: str) -> TurnResult:
    api.queue(tool_reply("create_project", PROJECT, text="Let me write that down."),
              text_reply("Recorded. What is the repository?"))
    result = coach.turn(thread, "I want to help night-shift nurses with handovers.")
    assert result.error is None and result.project_id is not None
    return result


# -- tool use, streaming, stop reasons ------------------------------------------------------


def test_tool_use_across_turns_pairs_each_result_and_keeps_the_history(sqlite_url, api):
    with claude_coach(sqlite_url, api) as coach:
        thread = coach.thread()
        first = create_project_turn(coach, api, thread)
        # The reply is the final answer; text said before a tool call was streamed already.
        # The reply is everything the coach said this turn, before and after its tool call.
        assert first.reply.endswith("\n\nRecorded. What is the repository?")
        assert first.step == "problem"
        assert first.tool_calls == [{"name": "create_project", "input": PROJECT, "ok": True}]

        api.queue(tool_reply("record_lesson", {"project_id": first.project_id,
                                               "kind": "decision",
                                               "text": "Start with one ward"},
                             tool_id="toolu_lesson1"),
                  text_reply("Noted the decision."))
        second = coach.turn(thread, "Decision: start with one ward")
        assert second.reply == "Noted the decision."

        (project,) = rows(coach.engine, Project)
        assert project.title == PROJECT["title"] and project.step == "problem"
        (lesson,) = rows(coach.engine, Lesson)
        assert (lesson.kind, lesson.text) == ("decision", "Start with one ward")

        bodies = api.message_requests
        assert len(bodies) == 4
        # The result of each tool call comes back in the very next user message, first.
        for call, answer in ((bodies[0], bodies[1]), (bodies[2], bodies[3])):
            assert call["messages"][-1]["role"] == "user"
            (use,) = [b for b in answer["messages"][-2]["content"] if b["type"] == "tool_use"]
            results = last_user_blocks(answer)
            assert results[0]["type"] == "tool_result"
            assert results[0]["tool_use_id"] == use["id"]
            assert results[0]["is_error"] is False
            assert results[-1]["text"].startswith(RECORDS)
        assert bodies[3]["messages"][-2]["content"][0]["id"] == "toolu_lesson1"
        # Turn 2 is sent with turn 1 (learner, tool call, result, reply) before it.
        turn2 = bodies[2]["messages"]
        assert [m["role"] for m in turn2] == ["user", "assistant", "user", "assistant", "user"]
        assert turn2[0]["content"][0]["text"].startswith("I want to help")
        assert turn2[-1]["content"][0]["text"] == "Decision: start with one ward"
        # The coach's records ride only in the last message, never in the history.
        assert all(RECORDS not in json.dumps(m) for m in turn2[:-1])

        entries = rows(coach.engine, TranscriptEntry)
        assert [(e.turn, e.role) for e in entries] == [
            (1, "user"), (1, "assistant"), (1, "user"), (1, "assistant"),
            (2, "user"), (2, "assistant"), (2, "user"), (2, "assistant")]


def test_streamed_text_reaches_on_text_in_order_and_tool_input_fragments_parse(sqlite_url,
                                                                                 api):
    with claude_coach(sqlite_url, api) as coach:
        thread = coach.thread()
        project_id = create_project_turn(coach, api, thread).project_id
        # Quotes, braces and non-ASCII split across input_json_delta fragments.
        tricky = 'Ward "B" {night} — 24 h, naïve → fixed; ✓ {"nested": [1, 2]}'
        text = "Good call. That tradeoff belongs in the post-mortem: it cost latency."
        api.queue(tool_reply("record_lesson", {"project_id": project_id, "kind": "tradeoff",
                                               "text": tricky}, text="Recording it."),
                  text_reply(text))
        pieces: list[str] = []
        result = coach.turn(thread, "Tradeoff: two model calls", on_text=pieces.append)

    assert len(pieces) > 3  # it really streamed, in several pieces
    assert "".join(pieces) == "Recording it." + text
    assert result.reply == "Recording it.\n\n" + text
    assert [lesson.text for lesson in rows(coach.engine, Lesson)] == [tricky]
    assert api.message_requests[-1]["stream"] is True


def test_parallel_tool_uses_each_get_exactly_one_result_with_is_error(sqlite_url, api):
    with claude_coach(sqlite_url, api) as coach:
        thread = coach.thread()
        pid = create_project_turn(coach, api, thread).project_id
        blocks = [
            {"type": "text", "text": "Recording three things."},
            {"type": "tool_use", "id": "toolu_ok", "name": "record_lesson",
             "input": {"project_id": pid, "kind": "worked", "text": "one feature first"}},
            {"type": "tool_use", "id": "toolu_bad_args", "name": "record_lesson",
             "input": {"project_id": pid, "kind": "vibes", "text": "bad kind"}},
            {"type": "tool_use", "id": "toolu_not_here", "name": "check_deployment",
             "input": {"project_id": pid, "url": "https://example.com"}},
        ]
        api.queue(reply(blocks, stop_reason="tool_use"), text_reply("One of three stuck."))
        result = coach.turn(thread, "Worked: one feature first")

    assert result.reply == "Recording three things.\n\nOne of three stuck."
    assert [(c["name"], c["ok"]) for c in result.tool_calls] == [
        ("record_lesson", True), ("record_lesson", False), ("check_deployment", False)]
    assert [lesson.text for lesson in rows(coach.engine, Lesson)] == ["one feature first"]
    answer = api.message_requests[-1]
    results = [b for b in last_user_blocks(answer) if b["type"] == "tool_result"]
    assert [(r["tool_use_id"], r["is_error"]) for r in results] == [
        ("toolu_ok", False), ("toolu_bad_args", True), ("toolu_not_here", True)]
    # Results first, then the coach's records; the failures say why.
    assert [b["type"] for b in last_user_blocks(answer)] == ["tool_result"] * 3 + ["text"]
    assert "invalid arguments" in results[1]["content"]
    assert "not available at step problem" in results[2]["content"]


def test_max_tokens_drops_a_half_written_tool_call_and_says_so(sqlite_url, api):
    with claude_coach(sqlite_url, api) as coach:
        thread = coach.thread()
        pid = create_project_turn(coach, api, thread).project_id
        api.queue(reply([{"type": "text", "text": "Here is a long answer"},
                         {"type": "tool_use", "id": "toolu_cut", "name": "record_lesson",
                          "input": {"project_id": pid, "kind": "worked"}}],
                        stop_reason="max_tokens"))
        sent = len(api.message_requests)
        result = coach.turn(thread, "Tell me everything")

    assert result.error is None and result.tool_calls == []
    assert result.reply.startswith("Here is a long answer")
    assert "length limit" in result.reply
    assert len(api.message_requests) == sent + 1
    assert rows(coach.engine, Lesson) == []


def test_refusal_runs_no_tool(sqlite_url, api):
    with claude_coach(sqlite_url, api) as coach:
        thread = coach.thread()
        api.queue(reply([{"type": "text", "text": "I can't help with that."},
                         {"type": "tool_use", "id": "toolu_refused", "name": "create_project",
                          "input": PROJECT}], stop_reason="refusal"))
        result = coach.turn(thread, "Something I should not ask")

    assert result.reply == "I can't help with that."
    assert result.tool_calls == [] and result.project_id is None
    assert rows(coach.engine, Project) == []
    assert len(api.message_requests) == 1


def test_pause_turn_is_resent_with_the_paused_content(sqlite_url, api):
    paused = [{"type": "text", "text": "Let me look that up…"}]
    with claude_coach(sqlite_url, api) as coach:
        thread = coach.thread()
        api.queue(reply(paused, stop_reason="pause_turn",
                        usage={"input_tokens": 100, "output_tokens": 10}),
                  text_reply("Found it: pick one ward first.",
                             usage={"input_tokens": 120, "output_tokens": 20}))
        result = coach.turn(thread, "What should I build first?")

    first, second = api.message_requests
    assert second["messages"][:-1] == first["messages"]
    assert second["messages"][-1] == {"role": "assistant", "content": paused}
    assert result.reply == "Let me look that up…\nFound it: pick one ward first."
    # One model call from the coach's side: one ledger row with both requests' usage.
    (row,) = ledger(coach)
    assert (row.input_tokens, row.output_tokens) == (220, 30)
    assert row.request_id == "req_000002"


# -- usage and cost -------------------------------------------------------------------------

# claude-sonnet-5-5, USD per million tokens (reference table); cache reads drop to 0.10
# from 2026-10-07, and a call is priced by its own date.
IN, W5M, W1H, OUT = Decimal(2), Decimal("2.50"), Decimal(4), Decimal(10)
READ = Decimal("0.10") if date.today() >= date(2026, 10, 7) else Decimal("0.20")


def test_every_usage_field_lands_in_the_ledger_with_the_exact_cost(sqlite_url, api):
    tool_usage = {"input_tokens": 1200, "output_tokens": 345,
                  "cache_read_input_tokens": 5000, "cache_creation_input_tokens": 3000,
                  "cache_creation": {"ephemeral_5m_input_tokens": 1000,
                                     "ephemeral_1h_input_tokens": 2000},
                  "service_tier": "standard"}
    text_usage = {"input_tokens": 50, "output_tokens": 80, "cache_read_input_tokens": 9000,
                  "cache_creation_input_tokens": 600, "service_tier": "standard",
                  "inference_geo": "us"}
    with claude_coach(sqlite_url, api) as coach:
        thread = coach.thread()
        api.queue(tool_reply("create_project", PROJECT, usage=tool_usage),
                  text_reply("Recorded.", usage=text_usage))
        result = coach.turn(thread, "Title: Handover Helper")

    first_cost = (1200 * IN + 1000 * W5M + 2000 * W1H + 5000 * READ + 345 * OUT) / 10**6
    # US-only inference on Sonnet 5.5: every rate × 1.1.
    # No TTL split in the usage: all 600 cache writes count as 5-minute writes.
    second_cost = (50 * IN + 600 * W5M + 9000 * READ + 80 * OUT) / 10**6 * Decimal("1.1")
    first, second = ledger(coach)
    assert first.cost_usd == first_cost and second.cost_usd == second_cost
    assert result.cost_usd == first_cost + second_cost
    assert result.usage == {"input_tokens": 1250, "output_tokens": 425,
                            "cache_read_input_tokens": 14000,
                            "cache_creation_input_tokens": 3600}
    assert (first.input_tokens, first.output_tokens, first.cache_read_input_tokens,
            first.cache_creation_input_tokens, first.cache_creation_5m_input_tokens,
            first.cache_creation_1h_input_tokens) == (1200, 345, 5000, 3000, 1000, 2000)
    assert (first.service_tier, first.inference_geo) == ("standard", None)
    assert (second.service_tier, second.inference_geo) == ("standard", "us")
    assert (second.cache_creation_5m_input_tokens, second.cache_creation_1h_input_tokens) == \
        (600, 0)
    for row, request_id in ((first, "req_000001"), (second, "req_000002")):
        assert row.model == MODEL and row.purpose == "coach" and row.status == "ok"
        assert row.request_id == request_id and row.error is None
        assert row.thread_id == thread and row.latency_ms >= 0
        assert row.trace_id == result.trace_id
    assert (first.project_id, first.step) == (None, None)
    assert (second.project_id, second.step) == (result.project_id, "problem")


def test_an_unknown_model_costs_unknown_not_zero(sqlite_url, api):
    with claude_coach(sqlite_url, api, model="claude-nova-9") as coach:
        thread = coach.thread()
        api.queue(text_reply("Hello from a model the price table has never heard of."))
        result = coach.turn(thread, "hello")
        report = cost_report(coach.engine, by="model", user_id=coach.user_id)

    assert result.error is None and result.cost_usd is None
    assert result.as_json()["cost_usd"] is None
    (row,) = ledger(coach)
    assert row.model == "claude-nova-9" and row.cost_usd is None and row.status == "ok"
    assert report["total_usd"] is None and report["unknown_cost_calls"] == 1
    assert report["rows"][0] == {**report["rows"][0], "key": "claude-nova-9",
                                 "cost_usd": None, "unknown_cost_calls": 1}


# -- errors ---------------------------------------------------------------------------------

OVERLOADED = {"type": "overloaded_error", "message": "Overloaded"}
STREAM_START = {"type": "message_start", "message": {
    "id": "msg_broken", "type": "message", "role": "assistant", "model": MODEL, "content": [],
    "stop_reason": None, "stop_sequence": None,
    "usage": {"input_tokens": 900, "output_tokens": 1}}}
BROKEN_STREAM = {**text_reply("never finished"), "stream_error": OVERLOADED, "events": [
    STREAM_START,
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "content_block_delta", "index": 0,
     "delta": {"type": "text_delta", "text": "Half a th"}},
    "ERROR"]}
MALFORMED = reply([{"type": "tool_use", "id": "toolu_bad_json", "name": "record_lesson",
                    "input": {}, "raw_json": '{"project_id": 1, "kind": "worked",, "text'}],
                  stop_reason="tool_use")

# (script for the failing turn, client max_retries, requests the server should see,
#  words the learner must read, request id named)
FAILURES = {
    "429 until retries run out": ([error(429, "rate_limit_error", "Too many requests",
                                         {"retry-after": "0"})] * 2, 1, 2, "rate limited",
                                  "req_000004"),
    "529 overloaded": ([error(529, "overloaded_error", "Overloaded")] * 2, 1, 2,
                       "overloaded", "req_000004"),
    "500 internal": ([error(500, "api_error", "Internal server error")] * 2, 1, 2,
                     "internal error", "req_000004"),
    "400 is not retried": ([error(400, "invalid_request_error", "messages.1: bad block")], 2,
                           1, "the request was invalid: messages.1: bad block", "req_000003"),
    "401 is not retried": ([error(401, "authentication_error", "invalid x-api-key")], 2, 1,
                           "API key was refused", "req_000003"),
    "403 is not retried": ([error(403, "permission_error", "not allowed")], 2, 1,
                           "may not use this", "req_000003"),
    "404 is not retried": ([error(404, "not_found_error", "model: claude-sonnet-5-5")], 2, 1,
                           "not found", "req_000003"),
    "413 is not retried": ([error(413, "request_too_large", "Request exceeds the maximum size")],
                           2, 1, "too large", "req_000003"),
    "stream error after HTTP 200": ([BROKEN_STREAM], 2, 1, "overloaded", "req_000003"),
    "malformed tool input": ([MALFORMED], 2, 1, "not valid JSON", "req_000003"),
}


@pytest.mark.parametrize("case", list(FAILURES))
def test_a_failed_call_ends_the_turn_clearly_and_the_next_turn_works(sqlite_url, api, case):
    script, retries, requests, words, request_id = FAILURES[case]
    with claude_coach(sqlite_url, api, max_retries=retries) as coach:
        thread = coach.thread()
        project_id = create_project_turn(coach, api, thread).project_id
        api.queue(*script)
        failed = coach.turn(thread, "Worked: one feature first")

        assert len(api.message_requests) == 2 + requests
        assert failed.error is not None and words.lower() in failed.error.lower()
        assert request_id in failed.error and "HTTP 200" not in failed.error
        assert failed.reply.startswith("Sorry, that turn failed:") and words in failed.reply
        assert "send it again" in failed.reply
        assert failed.project_id == project_id and failed.step == "problem"
        assert failed.tool_calls == [] and rows(coach.engine, Lesson) == []
        *ok, broken = ledger(coach)
        assert [r.status for r in ok] == ["ok", "ok"]
        assert (broken.status, broken.request_id, broken.cost_usd) == ("error", request_id, 0)
        assert words.lower() in (broken.error or "").lower()
        assert failed.cost_usd == 0

        api.queue(text_reply("Welcome back. Where were we?"))
        again = coach.turn(thread, "Worked: one feature first")
        assert again.error is None and again.reply == "Welcome back. Where were we?"

    # The project and turn 1 are intact, and the failed turn left no dangling message.
    (project,) = rows(coach.engine, Project)
    assert (project.title, project.step) == (PROJECT["title"], "problem")
    retry = api.message_requests[-1]["messages"]
    assert [m["role"] for m in retry] == ["user", "assistant", "user", "assistant", "user"]
    entries = rows(coach.engine, TranscriptEntry)
    assert [(e.turn, e.role) for e in entries if e.turn > 1] == [
        (2, "user"), (2, "error"), (3, "user"), (3, "assistant")]
    assert len(ledger(coach)) == 4


def test_429_retry_after_is_honoured_and_the_turn_succeeds(sqlite_url, api):
    with claude_coach(sqlite_url, api, max_retries=2) as coach:
        thread = coach.thread()
        api.queue(error(429, "rate_limit_error", "Too many requests", {"retry-after": "1"}),
                  text_reply("Hello!"))
        started = time.monotonic()
        result = coach.turn(thread, "hello")
        waited = time.monotonic() - started

    assert result.error is None and result.reply == "Hello!"
    assert len(api.message_requests) == 2 and waited >= 0.9
    (row,) = ledger(coach)  # the SDK's retry is one call to the coach
    assert (row.status, row.request_id) == ("ok", "req_000002")


def test_a_timeout_ends_the_turn_and_the_next_turn_works(sqlite_url, api):
    with claude_coach(sqlite_url, api, max_retries=0, timeout=1.0) as coach:
        thread = coach.thread()
        api.queue({**text_reply("too late"), "sleep": 3})
        started = time.monotonic()
        failed = coach.turn(thread, "hello")
        assert time.monotonic() - started < 2.5
        assert failed.error is not None and "timed out" in failed.error
        assert "timed out" in failed.reply
        (row,) = ledger(coach)
        assert row.status == "error" and "timed out" in (row.error or "")

        api.queue(text_reply("Back again."))
        again = coach.turn(thread, "hello again")
    assert again.error is None and again.reply == "Back again."
    assert api.message_requests[-1]["messages"][0]["content"][0]["text"] == "hello again"


# -- prompt caching -------------------------------------------------------------------------

# A model whose minimum cacheable prompt is 1024 tokens (the SDK warns about 4-5 as
# deprecated, and pytest turns warnings into errors).
SONNET_4 = "claude-sonnet-4-0"


def test_cache_breakpoints_on_tools_system_and_the_conversation(sqlite_url, api):
    # Sonnet 4 caches prefixes from 1024 tokens: the tools and the system prompt pass that
    # both before a project (three tools and the problem step's coaching) and after it.
    with claude_coach(sqlite_url, api, model=SONNET_4) as coach:
        thread = coach.thread()
        create_project_turn(coach, api, thread)

    before, after = api.message_requests
    assert len(before["tools"]) == 3
    assert breakpoints(before)[:2] == ["tools[2]", "system[0]"]
    last = len(after["messages"]) - 1
    blocks = last_user_blocks(after)
    assert breakpoints(after) == [f"tools[{len(after['tools']) - 1}]", "system[0]",
                                  f"messages[{last}][{len(blocks) - 2}]"]
    # The conversation breakpoint is on the tool result, just before the coach's records,
    # which change with every call and so stay out of the cached prefix.
    assert blocks[-2]["type"] == "tool_result"
    assert blocks[-1]["text"].startswith(RECORDS) and "cache_control" not in blocks[-1]
    assert all(bp["cache_control"] == {"type": "ephemeral"}
               for bp in (after["tools"][-1], after["system"][0], blocks[-2]))


def test_no_breakpoint_below_the_minimum_cacheable_prompt(sqlite_url, api):
    # claude-sonnet-5-5 needs 2048 tokens; three tools and the system prompt are less.
    with claude_coach(sqlite_url, api) as coach:
        thread = coach.thread()
        api.queue(text_reply("Hi! What problem do you want to solve?"))
        coach.turn(thread, "hello")
    (body,) = api.message_requests
    assert len(body["tools"]) == 3
    assert breakpoints(body) == []
    assert "cache_control" not in json.dumps(body)


def test_a_long_conversation_keeps_at_most_four_breakpoints_and_reads_the_cache(sqlite_url):
    with MessagesAPI(cache=True) as api, \
            claude_coach(sqlite_url, api, model=SONNET_4) as coach:
        thread = coach.thread()
        pid = create_project_turn(coach, api, thread).project_id
        for i in range(4):
            api.queue(tool_reply("record_lesson", {"project_id": pid, "kind": "worked",
                                                   "text": f"lesson {i}"}),
                      text_reply(f"Noted lesson {i}."))
            coach.turn(thread, f"Worked: lesson {i}")

    assert all(len(breakpoints(b)) <= 4 for b in api.message_requests)
    later = ledger(coach)[2:]
    assert all(r.cache_read_input_tokens > 0 for r in later)
    # From the second turn on, most of each prompt comes from the cache.
    read = sum(r.cache_read_input_tokens for r in later)
    sent = sum(r.input_tokens + r.cache_read_input_tokens + r.cache_creation_input_tokens
               for r in later)
    assert read / sent > 0.6
