"""Traces and metrics of coach turns, asserted on providers the tests own (issue 4).

Span trees and GenAI / OpenInference attributes for the offline coach and for Claude
through the local Messages-API server; usage and cost equal to the ledger's; content
only with the variable; no API key anywhere; metrics; the local span store.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import anthropic
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from sqlmodel import select

from agent.claude import ClaudeModel
from agent.offline import OfflineCoach
from agent.session import Coach, TurnResult
from evals.messages_api import MessagesAPI, error, text_reply, tool_reply
from memory.checkpoints import open_checkpointer
from memory.models import LedgerEntry
from memory.store import open_engine, session_scope
from telemetry.genai import REDACTED, Redactor
from telemetry.metrics import DURATION_BUCKETS, TOKEN_BUCKETS, views
from telemetry.spanstore import SpanStoreExporter, TurnSpanProcessor
from telemetry.traces import TraceNotFound, prune_spans, recent_traces, trace_spans

MODEL = "claude-sonnet-5-5"
PROJECT = {"title": "Handover Helper",
           "problem": "Night-shift nurses hand over ten to twenty patients in a few minutes "
                      "from handwritten notes, and abnormal vitals get lost when it is busy.",
           "audience": "ward nurses", "personal_context": "six years of night shifts",
           "success_criteria": "flags 95% of abnormal vitals"}
TOOL_USAGE = {"input_tokens": 1200, "output_tokens": 345, "cache_read_input_tokens": 5000,
              "cache_creation_input_tokens": 3000, "service_tier": "standard"}
TEXT_USAGE = {"input_tokens": 50, "output_tokens": 80, "cache_read_input_tokens": 9000,
              "cache_creation_input_tokens": 0, "service_tier": "standard"}
CONTENT_KEYS = ("input.value", "output.value",
                "gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions",
                "gen_ai.tool.call.arguments", "gen_ai.tool.call.result")


class Telemetry:
    """A tracer provider with an in-memory exporter and a meter provider with a reader."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader], views=views())

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def named(self, prefix: str) -> list[ReadableSpan]:
        return [s for s in self.spans() if s.name.startswith(prefix)]

    def metrics(self) -> dict[str, Any]:
        data = self.reader.get_metrics_data()
        assert data is not None
        return {m.name: m for rm in data.resource_metrics for sm in rm.scope_metrics
                for m in sm.metrics}


@pytest.fixture
def tel() -> Iterator[Telemetry]:
    t = Telemetry()
    yield t
    t.tracer_provider.shutdown()
    t.meter_provider.shutdown()


@pytest.fixture
def api() -> Iterator[MessagesAPI]:
    with MessagesAPI() as server:
        yield server


@contextmanager
def make_coach(url: str, tel: Telemetry | None, model: Any = None, *,
               capture_content: bool | None = None, user: str = "ada") -> Iterator[Coach]:
    engine = open_engine(url)
    try:
        with open_checkpointer(url) as saver:
            yield Coach(engine, saver, user=user, model=model or OfflineCoach(),
                        tracer_provider=tel.tracer_provider if tel else None,
                        meter_provider=tel.meter_provider if tel else None,
                        capture_content=capture_content)
    finally:
        engine.dispose()


@contextmanager
def claude(api: MessagesAPI, api_key: str = "test-key") -> Iterator[ClaudeModel]:
    client = anthropic.Anthropic(api_key=api_key, base_url=api.base_url, max_retries=0,
                                 timeout=10.0)
    try:
        yield ClaudeModel(MODEL, client=client)
    finally:
        client.close()


def ledger(coach: Coach) -> list[LedgerEntry]:
    with session_scope(coach.engine) as s:
        return list(s.exec(select(LedgerEntry).order_by(LedgerEntry.id)).all())  # type: ignore[arg-type]


def hex_id(value: int, width: int) -> str:
    return format(value, f"0{width}x")


def parent_name(span: ReadableSpan, spans: list[ReadableSpan]) -> str | None:
    if span.parent is None:
        return None
    return next(s.name for s in spans if s.context.span_id == span.parent.span_id)


def claude_turn(coach: Coach, api: MessagesAPI, text: str = "Title: Handover Helper"
                ) -> TurnResult:
    api.queue(tool_reply("create_project", PROJECT, usage=TOOL_USAGE, text="Noting it."),
              text_reply("Recorded. What is the repository?", usage=TEXT_USAGE))
    result = coach.turn(coach.thread("th-claude"), text)
    assert result.error is None, result.error
    return result


# -- the span tree ---------------------------------------------------------------------------


def test_a_turn_is_one_trace_root_then_nodes_then_chat_and_tool_spans(sqlite_url, tel):
    with make_coach(sqlite_url, tel) as coach:
        thread = coach.thread("th-1")
        result = coach.turn(thread, "Title: Handover Helper")
    spans = tel.spans()
    assert {hex_id(s.context.trace_id, 32) for s in spans} == {result.trace_id}
    [root] = [s for s in spans if s.parent is None]
    assert root.name == "invoke_agent coach" and root.kind == SpanKind.INTERNAL
    assert root.attributes is not None
    assert {k: root.attributes[k] for k in (
        "gen_ai.operation.name", "gen_ai.agent.name", "gen_ai.conversation.id", "user.id",
        "session.id", "openinference.span.kind", "coach.project.id", "coach.step")} == {
        "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "coach",
        "gen_ai.conversation.id": thread, "user.id": "ada", "session.id": thread,
        "openinference.span.kind": "AGENT", "coach.project.id": result.project_id,
        "coach.step": "problem"}
    nodes = [s for s in spans if s.name.startswith("node ")]
    assert [s.name for s in sorted(nodes, key=lambda s: s.start_time or 0)] == [
        "node listen", "node coach", "node tools", "node coach"]
    assert all(parent_name(s, spans) == "invoke_agent coach" for s in nodes)
    chats = tel.named("chat ")
    assert [s.name for s in chats] == ["chat offline", "chat offline"]
    assert all(s.kind == SpanKind.CLIENT and parent_name(s, spans) == "node coach"
               for s in chats)
    [tool] = tel.named("execute_tool ")
    assert tool.name == "execute_tool create_project"
    assert parent_name(tool, spans) == "node tools"
    assert tool.attributes is not None
    assert {k: tool.attributes[k] for k in (
        "gen_ai.operation.name", "gen_ai.tool.name", "gen_ai.tool.type",
        "openinference.span.kind", "coach.tool.outcome")} == {
        "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "create_project",
        "gen_ai.tool.type": "function", "openinference.span.kind": "TOOL",
        "coach.tool.outcome": "ok"}
    assert str(tool.attributes["gen_ai.tool.call.id"]).startswith("toolu_")
    assert all(s.status.status_code != StatusCode.ERROR for s in spans)


def test_offline_chat_spans_carry_the_ledgers_usage_and_cost(sqlite_url, tel):
    with make_coach(sqlite_url, tel) as coach:
        coach.turn(coach.thread("th-1"), "Title: Handover Helper")
        rows = ledger(coach)
    chats = tel.named("chat ")
    assert len(chats) == len(rows) == 2
    for span, row in zip(chats, rows, strict=True):
        a = span.attributes
        assert a is not None
        assert row.span_id == hex_id(span.context.span_id, 16)
        assert row.trace_id == hex_id(span.context.trace_id, 32)
        assert a["gen_ai.provider.name"] == "offline" and a["gen_ai.request.model"] == "offline"
        assert a["gen_ai.request.max_tokens"] == 2048
        # Estimates under the coach's own names; no real-usage name carries them.
        assert a["coach.usage.estimated.input_tokens"] == row.input_tokens
        assert a["coach.usage.estimated.output_tokens"] == row.output_tokens
        assert not [k for k in a if k.startswith(("gen_ai.usage.", "llm.token_count.",
                                                  "langfuse.observation.usage"))]
        assert a["llm.cost.total"] == float(row.cost_usd or 0) == 0.0
        assert a["coach.usage.estimated"] is True
        assert "server.address" not in a


def test_claude_chat_spans_follow_the_genai_conventions(sqlite_url, tel, api):
    with claude(api) as model, make_coach(sqlite_url, tel, model) as coach:
        result = claude_turn(coach, api)
        rows = ledger(coach)
    first, second = tel.named("chat ")
    assert first.name == f"chat {MODEL}" and first.kind == SpanKind.CLIENT
    a = dict(first.attributes or {})
    assert {k: a[k] for k in (
        "gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model",
        "gen_ai.request.max_tokens", "gen_ai.response.model", "gen_ai.response.finish_reasons",
        "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens",
        "gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_creation.input_tokens",
        "server.address", "gen_ai.conversation.id")} == {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": MODEL, "gen_ai.request.max_tokens": 2048,
        "gen_ai.response.model": MODEL, "gen_ai.response.finish_reasons": ("tool_use",),
        # Anthropic's input_tokens excludes the cache; the convention's includes it.
        "gen_ai.usage.input_tokens": 1200 + 5000 + 3000, "gen_ai.usage.output_tokens": 345,
        "gen_ai.usage.cache_read.input_tokens": 5000,
        "gen_ai.usage.cache_creation.input_tokens": 3000,
        "server.address": "127.0.0.1", "gen_ai.conversation.id": "th-claude"}
    assert str(a["gen_ai.response.id"]).startswith("msg_")
    assert {k: a[k] for k in (
        "openinference.span.kind", "llm.model_name", "llm.provider", "llm.token_count.prompt",
        "llm.token_count.completion", "llm.token_count.total",
        "llm.token_count.prompt_details.cache_read",
        "llm.token_count.prompt_details.cache_write", "session.id", "user.id")} == {
        "openinference.span.kind": "LLM", "llm.model_name": MODEL, "llm.provider": "anthropic",
        "llm.token_count.prompt": 9200, "llm.token_count.completion": 345,
        "llm.token_count.total": 9545, "llm.token_count.prompt_details.cache_read": 5000,
        "llm.token_count.prompt_details.cache_write": 3000, "session.id": "th-claude",
        "user.id": "ada"}
    assert (second.attributes or {})["gen_ai.response.finish_reasons"] == ("end_turn",)
    for span, row in zip((first, second), rows, strict=True):
        b = span.attributes or {}
        assert b["gen_ai.usage.input_tokens"] == (row.input_tokens + row.cache_read_input_tokens
                                                  + row.cache_creation_input_tokens)
        assert b["gen_ai.usage.output_tokens"] == row.output_tokens
        assert row.cost_usd is not None and row.cost_usd > 0
        assert b["llm.cost.total"] == float(row.cost_usd)
        # Langfuse's own attributes: usage whose "input" keys add up to the prompt once (no
        # double-counted cache), and the coach's exact cost instead of Langfuse's table.
        usage = json.loads(str(b["langfuse.observation.usage_details"]))
        assert usage == {"input": row.input_tokens,
                         "input_cache_read": row.cache_read_input_tokens,
                         "input_cache_creation": row.cache_creation_input_tokens,
                         "output": row.output_tokens}
        assert sum(v for k, v in usage.items() if "input" in k) == b["gen_ai.usage.input_tokens"]
        assert json.loads(str(b["langfuse.observation.cost_details"])) == {
            "total": float(row.cost_usd)}
        assert b["langfuse.observation.type"] == "generation"
        assert b["coach.request_id"] == row.request_id
        assert row.span_id == hex_id(span.context.span_id, 16)
    assert result.cost_usd == sum((r.cost_usd or Decimal(0) for r in rows), Decimal(0))


def test_a_failed_model_call_sets_error_type_on_its_span_and_the_turn(sqlite_url, tel, api):
    with claude(api) as model, make_coach(sqlite_url, tel, model) as coach:
        api.queue(error(529, "overloaded_error", "Overloaded"))
        result = coach.turn(coach.thread("th-err"), "hello")
    assert result.error
    [chat] = tel.named("chat ")
    assert chat.status.status_code == StatusCode.ERROR
    assert (chat.attributes or {})["error.type"] == "overloaded_error"
    assert "gen_ai.usage.input_tokens" not in (chat.attributes or {})
    [root] = tel.named("invoke_agent")
    assert root.status.status_code == StatusCode.ERROR
    duration = tel.metrics()["gen_ai.client.operation.duration"]
    [point] = duration.data.data_points
    assert point.attributes["error.type"] == "overloaded_error" and point.count == 1


def test_a_tool_error_and_a_gate_decision_are_on_the_tool_spans(sqlite_url, tel, api):
    with claude(api) as model, make_coach(sqlite_url, tel, model) as coach:
        claude_turn(coach, api)
        project_id = ledger(coach)[-1].project_id
        api.queue(tool_reply("update_project", {"project_id": project_id, "mvp_scope": "x"}),
                  tool_reply("advance_step", {"project_id": project_id}),
                  text_reply("Not yet."))
        coach.turn("th-claude", "next")
    tools = {s.name: s for s in tel.named("execute_tool ")}
    bad = tools["execute_tool update_project"]
    assert bad.status.status_code == StatusCode.ERROR
    assert (bad.attributes or {})["coach.tool.outcome"] == "error"
    assert (bad.attributes or {})["error.type"] == "tool_error"
    gate = tools["execute_tool advance_step"]
    g = gate.attributes or {}
    assert g["coach.tool.outcome"] == "ok" and g["coach.gate.decision"] == "advanced"
    assert g["coach.gate.step"] == "build" and "coach.gate.missing" not in g
    assert parent_name(gate, tel.spans()) == "node gate"


def test_a_blocked_gate_names_what_is_missing(sqlite_url, tel):
    with make_coach(sqlite_url, tel) as coach:
        thread = coach.thread()
        coach.turn(thread, "Title: Handover Helper")
        coach.turn(thread, "next")
    [gate] = tel.named("execute_tool advance_step")
    g = gate.attributes or {}
    assert g["coach.gate.decision"] == "blocked" and g["coach.gate.step"] == "problem"
    assert len(g["coach.gate.missing"]) >= 3
    assert gate.status.status_code != StatusCode.ERROR


# -- content capture and secrets ------------------------------------------------------------


def test_message_content_is_off_by_default(sqlite_url, tel, api):
    with claude(api) as model, make_coach(sqlite_url, tel, model) as coach:
        claude_turn(coach, api, "Title: Handover Helper, a very private note")
    for span in tel.spans():
        attributes = span.attributes or {}
        assert not set(CONTENT_KEYS) & set(attributes), span.name
        assert "very private" not in json.dumps(dict(attributes), default=str)


def test_the_variable_turns_message_content_on(sqlite_url, tel, api, monkeypatch):
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    with claude(api) as model, make_coach(sqlite_url, tel, model) as coach:
        result = claude_turn(coach, api, "Title: Handover Helper, a very private note")
    # OpenInference input/output: what Phoenix's trace list, sessions and span Output show.
    [root] = tel.named("invoke_agent")
    r = root.attributes or {}
    assert r["input.value"] == "Title: Handover Helper, a very private note"
    assert r["output.value"] == result.reply and r["output.mime_type"] == "text/plain"
    first, second = tel.named("chat ")
    assert json.loads(str((first.attributes or {})["input.value"]))[-1]["role"] == "user"
    # An LLM span's output is the reply's text, not the response envelope ({"id": "msg_…"}).
    assert (second.attributes or {})["output.value"] in result.reply
    assert not str((second.attributes or {})["output.value"]).startswith("{")
    a = first.attributes or {}
    system = json.loads(str(a["gen_ai.system_instructions"]))
    assert system[0]["type"] == "text" and system[0]["content"]
    messages = json.loads(str(a["gen_ai.input.messages"]))
    assert messages[-1]["role"] == "user"
    assert "very private" in messages[-1]["parts"][0]["content"]
    output = json.loads(str(a["gen_ai.output.messages"]))
    assert output[0]["finish_reason"] == "tool_use"
    assert {p["type"] for p in output[0]["parts"]} == {"text", "tool_call"}
    [tool] = tel.named("execute_tool ")
    t = tool.attributes or {}
    assert json.loads(str(t["gen_ai.tool.call.arguments"]))["title"] == "Handover Helper"
    assert "project_id" in json.loads(str(t["gen_ai.tool.call.result"]))


def test_no_api_key_in_any_span_attribute_or_log_even_with_content_on(
        sqlite_url, tel, api, monkeypatch, caplog):
    # Fake keys, assembled so that no key-shaped string sits in the repository.
    prefix = "sk-" + "ant-"
    marker = prefix + "api03-MARKER-do-not-leak-0123456789"
    pasted = prefix + "PASTED-abcdefghijklmnop"
    monkeypatch.setenv("ANTHROPIC_API_KEY", marker)
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    caplog.set_level(logging.DEBUG)
    with claude(api, api_key=marker) as model, make_coach(sqlite_url, tel, model) as coach:
        tel.tracer_provider.add_span_processor(TurnSpanProcessor(SpanStoreExporter(coach.engine)))
        # A learner pasting a key into a message: recorded content has it redacted.
        result = claude_turn(coach, api, f"Title: Handover Helper. My key is {pasted}")
        stored = trace_spans(coach.engine, coach.user_id, str(result.trace_id))
    assert marker in json.dumps(api.requests[0]["headers"])  # the key was really in use
    exported = json.dumps([json.loads(s.to_json()) for s in tel.spans()])
    assert "gen_ai.input.messages" in exported and REDACTED in exported
    for text in (exported, json.dumps(stored)):
        assert "MARKER" not in text and "PASTED" not in text
    assert "MARKER" not in caplog.text  # (the SDK's debug log does show the prompt itself)


def test_the_redactor_removes_configured_secrets_and_key_shapes():
    redact = Redactor(["super-secret-token-value", "short"])
    text = redact("a super-secret-token-value, sk-ant-abcdefgh12345, Bearer abcdefghijklmnopqrstu"
                  " and a short word")
    assert "super-secret" not in text and "sk-ant-abcdefgh" not in text
    assert "abcdefghijklmnopqrstu" not in text and "short word" in text


# -- metrics ---------------------------------------------------------------------------------


def test_token_duration_and_cost_metrics_with_the_convention_buckets(sqlite_url, tel, api):
    with claude(api) as model, make_coach(sqlite_url, tel, model) as coach:
        claude_turn(coach, api)
        rows = ledger(coach)
    metrics = tel.metrics()
    tokens = metrics["gen_ai.client.token.usage"]
    assert tokens.unit == "{token}"
    by_type = {p.attributes["gen_ai.token.type"]: p for p in tokens.data.data_points}
    assert set(by_type) == {"input", "output"}
    assert by_type["input"].sum == sum(r.input_tokens + r.cache_read_input_tokens
                                       + r.cache_creation_input_tokens for r in rows)
    assert by_type["output"].sum == sum(r.output_tokens for r in rows)
    assert by_type["input"].count == 2
    assert tuple(by_type["input"].explicit_bounds) == tuple(float(b) for b in TOKEN_BUCKETS)
    assert by_type["input"].attributes["gen_ai.request.model"] == MODEL
    assert by_type["input"].attributes["gen_ai.provider.name"] == "anthropic"
    duration = metrics["gen_ai.client.operation.duration"]
    assert duration.unit == "s"
    [point] = duration.data.data_points
    assert point.count == 2 and tuple(point.explicit_bounds) == DURATION_BUCKETS
    cost = metrics["coach.model.cost"]
    [total] = cost.data.data_points
    assert dict(total.attributes) == {"gen_ai.request.model": MODEL, "coach.purpose": "coach"}
    assert total.value == pytest.approx(float(sum((r.cost_usd or 0) for r in rows)))


# -- the local span store --------------------------------------------------------------------


def test_the_span_store_holds_each_turn_as_soon_as_it_returns(sqlite_url):
    with make_coach(sqlite_url, None) as coach:
        thread = coach.thread("th-store")
        first = coach.turn(thread, "Title: Handover Helper")
        second = coach.turn(thread, "status")
        traces = recent_traces(coach.engine, coach.user_id)
        spans = trace_spans(coach.engine, coach.user_id, str(first.trace_id))
        rows = ledger(coach)
    assert [t["trace_id"] for t in traces] == [second.trace_id, first.trace_id]
    newest = traces[0]
    assert newest["thread_id"] == thread and newest["error"] is False
    # Offline: estimates, kept apart from (zero) real usage.
    assert newest["model_calls"] == 1 and newest["input_tokens"] == 0
    assert newest["estimated_input_tokens"] == second.usage["input_tokens"]
    assert traces[1]["model_calls"] == 2
    assert traces[1]["estimated_output_tokens"] == sum(r.output_tokens for r in rows
                                             if r.trace_id == first.trace_id)
    assert traces[1]["cost_usd"] == 0.0
    by_id = {s["span_id"]: s for s in spans}
    roots = [s for s in spans if s["parent_id"] is None]
    assert [r["name"] for r in roots] == ["invoke_agent coach"]
    assert all(s["parent_id"] in by_id for s in spans if s["parent_id"])
    assert {s["name"] for s in spans} >= {"node listen", "chat offline",
                                          "execute_tool create_project"}
    assert all(s["duration_ms"] >= 0 for s in spans)


def test_another_learners_trace_is_not_found(sqlite_url):
    with make_coach(sqlite_url, None) as coach:
        result = coach.turn(coach.thread(), "status")
    with make_coach(sqlite_url, None, user="bob") as other:
        with pytest.raises(TraceNotFound, match="no trace"):
            trace_spans(other.engine, other.user_id, str(result.trace_id))
        assert recent_traces(other.engine, other.user_id) == []


def test_prune_deletes_only_spans_older_than_the_cutoff(sqlite_url):
    with make_coach(sqlite_url, None) as coach:
        coach.turn(coach.thread(), "status")
        stored = len(trace_spans(coach.engine, coach.user_id,
                                 recent_traces(coach.engine, coach.user_id)[0]["trace_id"]))
        assert prune_spans(coach.engine, 7) == 0
        later = datetime.now(UTC) + timedelta(days=8)
        assert prune_spans(coach.engine, 7, now=later) == stored
        assert recent_traces(coach.engine, coach.user_id) == []


def test_otel_sdk_disabled_records_nothing_and_the_turn_still_works(sqlite_url, monkeypatch):
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    with make_coach(sqlite_url, None) as coach:
        result = coach.turn(coach.thread(), "status")
        assert result.reply and result.trace_id is None
        assert recent_traces(coach.engine, coach.user_id) == []


def test_the_store_can_be_turned_off_on_its_own(sqlite_url, monkeypatch):
    monkeypatch.setenv("COACH_TRACE_STORE", "off")
    with make_coach(sqlite_url, None) as coach:
        result = coach.turn(coach.thread(), "status")
        assert result.trace_id is not None
        assert recent_traces(coach.engine, coach.user_id) == []


@pytest.mark.postgres
def test_the_span_store_on_postgresql(pg_url):
    with make_coach(pg_url, None) as coach:
        result = coach.turn(coach.thread("th-pg"), "Title: Handover Helper")
        [trace] = recent_traces(coach.engine, coach.user_id)
        spans = trace_spans(coach.engine, coach.user_id, str(result.trace_id))
        assert prune_spans(coach.engine, 1, now=datetime.now(UTC) + timedelta(days=2)) == \
            len(spans)
    assert trace["trace_id"] == result.trace_id and trace["model_calls"] == 2
    assert trace["estimated_input_tokens"] == result.usage["input_tokens"]
    assert {s["name"] for s in spans} >= {"invoke_agent coach", "execute_tool create_project"}


# -- exit-time flushes -------------------------------------------------------------------------


def test_traces_and_metrics_flush_side_by_side_within_one_deadline():
    # Each action waits for the other to have started: run one after the other (each with
    # its own deadline, as before), the first would wait out its time alone and report late.
    import threading

    from telemetry.tracing import flush, within

    started = threading.Barrier(2, timeout=30)
    assert within(30, [started.wait, started.wait]) is True

    class Hanging:
        """A provider whose flush never returns, as with a collector that accepts and hangs."""

        def __init__(self) -> None:
            self.release = threading.Event()

        def force_flush(self, timeout_millis: int = 0) -> bool:
            return self.release.wait(60)

    hung = Hanging()
    try:
        # One provider hanging does not hold up the other, nor the caller past the deadline.
        done = threading.Event()
        assert flush(hung, type("Quick", (), {"force_flush": lambda self, **_: done.set()})(),
                     seconds=0.2) is False
        assert done.is_set()
    finally:
        hung.release.set()
