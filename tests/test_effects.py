"""A tool call run again under the same tool_use id is answered from its record, not run
again (issue 16): the record is written in the effect's own transaction, per learner."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import Engine, func, text
from sqlmodel import select

import tools.base
from agent.context import CoachRuntime, call_tool
from agent.demo import local_app
from agent.graph import build_graph
from memory.models import (
    Evidence,
    Lesson,
    PostmortemVersion,
    Project,
    ProjectUsage,
    StepTransition,
    ToolCall,
)
from memory.store import session_scope
from memory.users import ensure_user
from telemetry.instrument import ToolTracer
from tests.doubles import ScriptedModel, use
from tests.doubles import text as say
from tests.test_session import FIRST_MESSAGE, open_coach
from tests.test_tools import FULL_PROBLEM, harden_repo, postmortem_text
from tools import TOOLS, Tool, ToolContext, ToolResult

WRITING = {"create_project", "update_project", "advance_step", "start_next_project",
           "check_deployment", "record_evidence", "record_lesson", "audit_repository",
           "record_project_usage", "submit_postmortem", "draft_postmortem"}
LESSON = {"kind": "worked", "text": "one feature first kept the scope honest"}


@pytest.fixture
def store(store_engine: Engine) -> Engine:
    return store_engine


@pytest.fixture
def ctx(store: Engine) -> ToolContext:
    return ToolContext(store, ensure_user(store, "ada"), "thread-ada")


@pytest.fixture
def on_sqlite(engine: Engine) -> ToolContext:
    """For failures made inside SQLite itself (a trigger)."""
    return ToolContext(engine, ensure_user(engine, "ada"), "thread-ada")


@pytest.fixture
def local_site() -> Iterator[str]:
    with local_app({"/": (200, {}, b"<html><body>runbook search</body></html>")}) as url:
        yield url


def run(ctx: ToolContext, name: str, raw: dict[str, Any], call_id: str) -> ToolResult:
    return TOOLS[name](ctx.for_call(call_id, name), raw)


def stored(engine: Engine) -> dict[str, int]:
    with session_scope(engine) as s:
        return {m.__name__: s.exec(select(func.count()).select_from(m)).one()
                for m in (Project, Evidence, Lesson, PostmortemVersion, ProjectUsage,
                          StepTransition, ToolCall)}


def as_read(content: dict[str, Any]) -> dict[str, Any]:
    """A result as the model reads it (ToolResult.text)."""
    loaded: dict[str, Any] = json.loads(json.dumps(content, default=str))
    return loaded


def twice(ctx: ToolContext, name: str, raw: dict[str, Any], call_id: str) -> ToolResult:
    """Run one call, then the same call again: the second changes nothing and answers
    what the first did."""
    first = run(ctx, name, raw, call_id)
    assert first.ok and not first.replayed, first.content
    after_first = stored(ctx.engine)
    second = run(ctx, name, raw, call_id)
    assert stored(ctx.engine) == after_first, name
    assert second.ok and second.replayed
    assert second.content.pop("replayed") is True
    assert second.content == as_read(first.content)
    assert second.opened_project == first.opened_project
    return first


def test_the_tools_that_write_are_the_ones_that_record_their_calls() -> None:
    assert {name for name, tool in TOOLS.items() if tool.writes} == WRITING


def test_the_same_call_id_creates_one_project(ctx: ToolContext) -> None:
    first = twice(ctx, "create_project", FULL_PROBLEM, "toolu_a")
    assert first.opened_project == first.content["project_id"]
    assert stored(ctx.engine)["Project"] == 1


def test_the_same_call_id_stores_one_lesson_and_different_ids_two(ctx: ToolContext) -> None:
    pid = run(ctx, "create_project", FULL_PROBLEM, "toolu_p").content["project_id"]
    raw = {"project_id": pid, **LESSON}
    twice(ctx, "record_lesson", raw, "toolu_l1")
    assert stored(ctx.engine)["Lesson"] == 1
    again = run(ctx, "record_lesson", raw, "toolu_l2")
    assert again.ok and not again.replayed
    assert stored(ctx.engine)["Lesson"] == 2


def test_a_call_without_an_id_is_not_recorded(ctx: ToolContext) -> None:
    # A script or the CLI calling a tool directly: nothing to key a record by.
    for _ in range(2):
        assert TOOLS["create_project"](ctx, FULL_PROBLEM).ok
    assert stored(ctx.engine)["Project"] == 2 and stored(ctx.engine)["ToolCall"] == 0


def test_a_replayed_call_says_so_on_its_span(ctx: ToolContext) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = ToolTracer(provider)
    block = {"id": "toolu_a", "name": "create_project", "input": FULL_PROBLEM}
    for _ in range(2):
        tracer.run(TOOLS["create_project"], ctx.for_call("toolu_a", "create_project"), block)
    spans = exporter.get_finished_spans()
    assert [s.name for s in spans] == ["execute_tool create_project"] * 2
    assert [(s.attributes or {}).get("coach.tool.replayed") for s in spans] == [None, True]
    assert all((s.attributes or {})["gen_ai.tool.call.id"] == "toolu_a" for s in spans)


def test_a_tool_that_only_reads_records_nothing(ctx: ToolContext) -> None:
    run(ctx, "create_project", FULL_PROBLEM, "toolu_p")
    for _ in range(2):
        result = run(ctx, "get_portfolio", {}, "toolu_read")
        assert result.ok and not result.replayed
    assert stored(ctx.engine)["ToolCall"] == 1


def test_another_learners_identical_call_id_is_their_own_call(ctx: ToolContext) -> None:
    bob = ToolContext(ctx.engine, ensure_user(ctx.engine, "bob"), "thread-bob")
    mine = run(ctx, "create_project", FULL_PROBLEM, "toolu_same")
    theirs = run(bob, "create_project", {**FULL_PROBLEM, "title": "Bob's"}, "toolu_same")
    assert theirs.ok and not theirs.replayed
    assert theirs.content["project_id"] != mine.content["project_id"]
    with session_scope(ctx.engine) as s:
        owners = sorted((p.user_id, p.title) for p in s.exec(select(Project)).all())
        calls = sorted((c.user_id, c.call_id) for c in s.exec(select(ToolCall)).all())
    assert owners == sorted([(ctx.user_id, FULL_PROBLEM["title"]), (bob.user_id, "Bob's")])
    assert calls == sorted([(ctx.user_id, "toolu_same"), (bob.user_id, "toolu_same")])


def test_a_call_id_used_by_another_tool_is_refused_not_replayed(ctx: ToolContext) -> None:
    pid = run(ctx, "create_project", FULL_PROBLEM, "toolu_x").content["project_id"]
    clash = run(ctx, "record_lesson", {"project_id": pid, **LESSON}, "toolu_x")
    assert not clash.ok and "create_project" in clash.content["error"]
    assert stored(ctx.engine)["Lesson"] == 0


def test_an_effect_whose_transaction_fails_leaves_no_record_and_a_retry_runs_it(
        on_sqlite: ToolContext) -> None:
    pid = run(on_sqlite, "create_project", FULL_PROBLEM, "toolu_p").content["project_id"]
    raw = {"project_id": pid, **LESSON}
    with on_sqlite.engine.begin() as conn:  # the lesson's insert fails inside the database
        conn.execute(text("CREATE TRIGGER no_lessons BEFORE INSERT ON lessons "
                          "BEGIN SELECT RAISE(ABORT, 'disk full'); END"))
    failed = run(on_sqlite, "record_lesson", raw, "toolu_l")
    assert not failed.ok
    assert stored(on_sqlite.engine)["Lesson"] == 0 and stored(on_sqlite.engine)["ToolCall"] == 1
    with on_sqlite.engine.begin() as conn:
        conn.execute(text("DROP TRIGGER no_lessons"))
    retried = run(on_sqlite, "record_lesson", raw, "toolu_l")
    assert retried.ok and not retried.replayed
    assert stored(on_sqlite.engine)["Lesson"] == 1 and stored(on_sqlite.engine)["ToolCall"] == 2


def test_a_record_that_cannot_be_written_takes_the_effect_with_it(
        on_sqlite: ToolContext) -> None:
    pid = run(on_sqlite, "create_project", FULL_PROBLEM, "toolu_p").content["project_id"]
    with on_sqlite.engine.begin() as conn:
        conn.execute(text("CREATE TRIGGER no_records BEFORE INSERT ON tool_calls "
                          "BEGIN SELECT RAISE(ABORT, 'disk full'); END"))
    failed = run(on_sqlite, "record_lesson", {"project_id": pid, **LESSON}, "toolu_l")
    assert not failed.ok
    assert stored(on_sqlite.engine)["Lesson"] == 0  # one transaction: both or neither


def test_the_same_call_racing_in_another_process_has_its_effect_once(
        ctx: ToolContext, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both runs look the id up before either commits; the second's record loses the key,
    its lesson rolls back with it, and it answers with the winner's result."""
    pid = run(ctx, "create_project", FULL_PROBLEM, "toolu_p").content["project_id"]
    raw = {"project_id": pid, **LESSON}
    winner = run(ctx, "record_lesson", raw, "toolu_l")
    looked_up = tools.base.recorded_call
    lookups: list[str | None] = []

    def before_the_winner_committed(c: ToolContext) -> ToolCall | None:
        lookups.append(c.call_id)
        return None if len(lookups) == 1 else looked_up(c)

    monkeypatch.setattr(tools.base, "recorded_call", before_the_winner_committed)
    loser = run(ctx, "record_lesson", raw, "toolu_l")
    assert loser.ok and loser.replayed
    assert loser.content["lesson_id"] == winner.content["lesson_id"]
    assert stored(ctx.engine)["Lesson"] == 1 and lookups == ["toolu_l", "toolu_l"]


def test_every_writing_tool_run_twice_has_its_effect_once(
        ctx: ToolContext, tmp_path: Path, local_site: str) -> None:
    """The six steps and every writing tool, each call sent twice under one id."""
    local = ToolContext(ctx.engine, ctx.user_id, ctx.thread_id, allow_private_urls=True,
                        fetch_timeout=5)
    pid = twice(ctx, "create_project", FULL_PROBLEM, "c1").content["project_id"]
    steps = iter(range(100))

    def advance(expected: str) -> None:
        result = twice(ctx, "advance_step", {"project_id": pid}, f"gate{next(steps)}")
        assert result.content["step"] == expected, result.content

    advance("build")
    repo = str(harden_repo(tmp_path / "r"))
    twice(ctx, "update_project", {"project_id": pid, "repo": repo, "mvp_scope": ["search"],
                                  "usage_note": "answered a real page"}, "c2")
    advance("deploy")
    twice(local, "check_deployment", {"project_id": pid, "url": local_site}, "c3")
    advance("harden")
    twice(ctx, "audit_repository", {"project_id": pid, "path": repo}, "c4")
    for i, (kind, details) in enumerate([
            ("evals", {"cases": 24, "pass_rate": 91, "grader": "llm judge"}),
            ("ci_gate", {"provider": "github actions"}),
            ("observability", {"tool": "phoenix", "link": "https://phoenix.example/t/1"}),
            ("cost_tracking", {"cost_usd": 0.004, "per": "request"})]):
        twice(ctx, "record_evidence", {"project_id": pid, "kind": kind, "details": details},
              f"e{i}")
    twice(ctx, "record_lesson", {"project_id": pid, **LESSON}, "c5")
    twice(ctx, "record_project_usage", {"project_id": pid, "model": "claude-haiku-5-5",
                                        "input_tokens": 1000, "output_tokens": 200}, "c6")
    advance("postmortem")
    twice(ctx, "draft_postmortem", {"project_id": pid}, "c7")
    twice(ctx, "submit_postmortem", {"project_id": pid, "text": postmortem_text()}, "c8")
    advance("repeat")
    twice(ctx, "start_next_project", {"from_project_id": pid, **FULL_PROBLEM,
                                      "title": "Agentic runbooks",
                                      "capabilities": ["retrieval", "agents"]}, "c9")
    advance("done")
    counts = stored(ctx.engine)
    assert counts["Project"] == 2 and counts["StepTransition"] == 6
    assert counts["PostmortemVersion"] == 2 and counts["Lesson"] == 1


def test_a_gate_that_refuses_is_not_recorded(ctx: ToolContext) -> None:
    pid = run(ctx, "create_project", {"title": "only a title"}, "c1").content["project_id"]
    for _ in range(2):
        refused = run(ctx, "advance_step", {"project_id": pid}, "gate")
        assert refused.ok and refused.content["ok"] is False and not refused.replayed
    assert stored(ctx.engine)["ToolCall"] == 1


# ---------------------------------------------------------------- through the graph

PROBLEM = {**FULL_PROBLEM, "capabilities": ["retrieval"]}


class Crash(Exception):
    """The process dying part-way through the tools node (after a tool committed)."""


def test_langgraph_rerunning_a_tools_node_from_its_checkpoint_repeats_no_effect(
        engine: Engine) -> None:
    """The tools node stops after its first call committed; resumed from the checkpoint,
    LangGraph runs the node again with the same tool_use ids: the first call is answered
    from its record, the second runs, and the model sees one result per call."""
    user_id = ensure_user(engine, "ada")
    with session_scope(engine) as s:
        project = Project(user_id=user_id, title="Runbook search", step="harden")
        s.add(project)
        s.flush()
        pid = project.id
    model = ScriptedModel(
        [use("toolu_1", "record_lesson", {"project_id": pid, **LESSON}),
         use("toolu_2", "record_evidence", {"project_id": pid, "kind": "ci_gate",
                                            "details": {"provider": "github actions"}})],
        [say("Stored both.")])
    ran: list[str] = []

    def dies_after_the_first(tool: Tool, ctx: ToolContext, block: dict[str, Any]) -> ToolResult:
        result = call_tool(tool, ctx, block)
        ran.append(block["id"])
        if len(ran) == 1:
            raise Crash
        return result

    graph = build_graph().compile(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "t1"}}
    runtime = CoachRuntime(engine=engine, user_id=user_id, model=model, thread_id="t1",
                           run_tool=dies_after_the_first)
    with pytest.raises(Crash):
        graph.invoke({"incoming": "CI runs the evals; one feature first"}, config,
                     context=runtime)
    assert stored(engine)["Lesson"] == 1
    state = graph.invoke(None, config, context=runtime)  # resume from the checkpoint
    assert ran == ["toolu_1", "toolu_1", "toolu_2"]  # the node ran again, same ids
    counts = stored(engine)
    assert counts["Lesson"] == 1 and counts["Evidence"] == 1
    [results] = [m["content"] for m in state["messages"]
                 if m["role"] == "user" and m["content"][0].get("type") == "tool_result"]
    assert [r["tool_use_id"] for r in results] == ["toolu_1", "toolu_2"]
    assert json.loads(results[0]["content"])["replayed"] is True
    assert state["messages"][-1]["content"] == [say("Stored both.")]


# ---------------------------------------------------------------- the offline coach's ids


def test_two_threads_opening_with_the_same_words_make_two_calls(sqlite_url: str) -> None:
    """The offline coach's ids follow the history; the thread is part of it, so the same
    first message in a second thread is a new call, not a replay of the first thread's."""
    with open_coach(sqlite_url) as coach:
        coach.turn(coach.thread("t0"), FIRST_MESSAGE)
        replies = [coach.turn(coach.thread(t), "Worked: one feature first kept it small")
                   for t in ("ta", "tb")]
        assert all(r.tool_calls[0] == {"name": "record_lesson", "input": {
            "project_id": 1, "kind": "worked", "text": "one feature first kept it small"},
            "ok": True} for r in replies)
        assert stored(coach.engine)["Lesson"] == 2


def test_the_same_message_sent_again_to_the_same_history_is_answered_not_repeated(
        sqlite_url: str) -> None:
    """A turn whose process died before it was recorded (no checkpoint) is sent again:
    the offline coach makes the same calls with the same ids, and they are answered."""
    with open_coach(sqlite_url) as coach:
        thread = coach.thread("t1")
        coach.turn(thread, FIRST_MESSAGE)
        config = {"configurable": {"thread_id": thread}}
        before = coach.graph.get_state(config)
        first = coach.turn(thread, "Worked: one feature first kept it small")
        # As if the process had died before the turn's checkpoint: back to the one before.
        coach.graph.update_state(config, before.values)
        again = coach.turn(thread, "Worked: one feature first kept it small")
        assert again.tool_calls == first.tool_calls
        assert stored(coach.engine)["Lesson"] == 1
