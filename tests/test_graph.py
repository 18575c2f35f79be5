"""Graph routing with a scripted model: listen → coach → tools/gate → coach … → END."""

from __future__ import annotations

import json
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from sqlalchemy import Engine
from sqlmodel import select

from agent.context import CoachRuntime
from agent.graph import SUMMARY_LINES, build_graph, complete_turns, fold, turn_starts
from agent.steps import instructions
from memory.models import Evidence, Lesson, Project
from memory.store import session_scope
from memory.users import ensure_user
from seam.model import Block, Message
from tests.doubles import ScriptedModel, respond, text, use

GOOD_PROBLEM = ("Night-shift nurses hand over ten to twenty patients in a few minutes from "
                "handwritten notes, and abnormal vitals get lost when the ward is busy.")


class Harness:
    def __init__(self, engine: Engine, model: ScriptedModel, **runtime: Any) -> None:
        self.engine = engine
        self.model = model
        self.user_id = ensure_user(engine, "ann")
        self.graph = build_graph().compile(checkpointer=InMemorySaver())
        self.runtime_args = runtime
        self.thread = "t1"

    def runtime(self) -> CoachRuntime:
        return CoachRuntime(engine=self.engine, user_id=self.user_id, model=self.model,
                            thread_id=self.thread, **self.runtime_args)

    def turn(self, message: str) -> dict[str, Any]:
        return self.graph.invoke({"incoming": message},
                                 {"configurable": {"thread_id": self.thread}},
                                 context=self.runtime())

    def project(self, **fields: Any) -> int:
        with session_scope(self.engine) as s:
            project = Project(user_id=self.user_id, title=fields.pop("title", "Handover"),
                              **fields)
            s.add(project)
            s.flush()
            assert project.id is not None
            return project.id

    def get(self, project_id: int) -> Project:
        with session_scope(self.engine) as s:
            project = s.get(Project, project_id)
            assert project is not None
            return project

    def lessons(self) -> list[Lesson]:
        with session_scope(self.engine) as s:
            return list(s.exec(select(Lesson)).all())


@pytest.fixture
def model() -> ScriptedModel:
    return ScriptedModel()


@pytest.fixture
def h(engine: Engine, model: ScriptedModel) -> Harness:
    return Harness(engine, model)


def results_of(message: Message) -> dict[str, Block]:
    assert message["role"] == "user"
    blocks = message["content"]
    assert all(b["type"] == "tool_result" for b in blocks)
    ids = [b["tool_use_id"] for b in blocks]
    assert len(ids) == len(set(ids)), "one tool_result per tool_use id"
    return {b["tool_use_id"]: b for b in blocks}


# -- routing -------------------------------------------------------------------------------

def test_text_only_response_ends_the_turn_after_one_call(h: Harness, model: ScriptedModel
                                                         ) -> None:
    model.queue.append([text("Hello! What problem do you want to solve?")])
    state = h.turn("hi")
    assert len(model.requests) == 1
    assert state["calls"] == 1
    assert state["tool_calls"] == []
    assert state["messages"][-1] == {"role": "assistant",
                                     "content": [text("Hello! What problem do you want to solve?")]}
    # The request carried the learner's message as the last user message.
    assert model.requests[0].messages[-1] == {"role": "user", "content": [text("hi")]}


def test_tool_use_goes_to_tools_then_back_to_coach(h: Harness, model: ScriptedModel) -> None:
    pid = h.project()
    model.queue += [
        [text("Noting that."), use("toolu_1", "record_lesson",
                                   {"project_id": pid, "kind": "worked", "text": "real notes"})],
        [text("Saved.")],
    ]
    h.turn("Worked: real notes")
    assert len(model.requests) == 2
    second = model.requests[1].messages
    assert second[-2]["role"] == "assistant"
    assert [b["type"] for b in second[-2]["content"]] == ["text", "tool_use"]
    results = results_of(second[-1])
    assert set(results) == {"toolu_1"}
    assert results["toolu_1"]["is_error"] is False
    body = json.loads(results["toolu_1"]["content"])
    assert body["kind"] == "worked" and body["text"] == "real notes"
    assert [(lesson.kind, lesson.text) for lesson in h.lessons()] == [("worked", "real notes")]


def test_parallel_tool_uses_are_answered_in_one_user_message(h: Harness, model: ScriptedModel
                                                             ) -> None:
    pid = h.project()
    model.queue += [
        [use("toolu_a", "record_lesson", {"project_id": pid, "kind": "worked", "text": "aaa"}),
         use("toolu_b", "update_project", {"project_id": pid, "audience": "ward nurses"})],
        [text("Both saved.")],
    ]
    state = h.turn("two things")
    second = model.requests[1].messages
    results = results_of(second[-1])
    assert set(results) == {"toolu_a", "toolu_b"}
    assert not any(r["is_error"] for r in results.values())
    assert second[-2]["role"] == "assistant"
    assert [m["role"] for m in second].count("user") == 2  # the learner's text + one result
    assert [c["name"] for c in state["tool_calls"]] == ["record_lesson", "update_project"]
    assert h.get(pid).audience == "ward nurses"


def test_advance_step_routes_through_the_gate(h: Harness, model: ScriptedModel) -> None:
    pid = h.project(problem=GOOD_PROBLEM, audience="ward nurses", personal_context="nights",
                    success_criteria="95% of abnormal vitals flagged")
    model.queue += [[use("toolu_g", "advance_step", {"project_id": pid})],
                    [text("On to building.")]]
    state = h.turn("next")
    results = results_of(model.requests[1].messages[-1])
    assert set(results) == {"toolu_g"}
    body = json.loads(results["toolu_g"]["content"])
    assert body["ok"] is True and body["from_step"] == "problem" and body["step"] == "build"
    assert state["gate"]["step"] == "build"
    assert h.get(pid).step == "build"
    # The next model call already sees the new step's instructions and tools.
    assert "Current step 2/6" in model.requests[1].system
    assert "audit_repository" in {t["name"] for t in model.requests[1].tools}


@pytest.mark.parametrize("gate_first", [False, True])
def test_mixed_advance_and_update_are_both_answered(h: Harness, model: ScriptedModel,
                                                    gate_first: bool) -> None:
    pid = h.project(problem=GOOD_PROBLEM, audience="ward nurses", personal_context="nights")
    update = use("toolu_u", "update_project",
                 {"project_id": pid, "success_criteria": "flags 95% of abnormal vitals"})
    advance = use("toolu_g", "advance_step", {"project_id": pid})
    model.queue += [[advance, update] if gate_first else [update, advance], [text("Done.")]]
    state = h.turn("Success: flags 95% of abnormal vitals")
    second = model.requests[1].messages
    results = results_of(second[-1])
    assert set(results) == {"toolu_u", "toolu_g"}
    # Facts are stored before the gate runs, so the gate sees the new success criterion.
    assert json.loads(results["toolu_g"]["content"])["ok"] is True
    assert h.get(pid).step == "build"
    assert [c["name"] for c in state["tool_calls"]] == ["update_project", "advance_step"]
    # Results come back in one user message, after exactly one assistant message.
    assert [m["role"] for m in second[-3:]] == ["user", "assistant", "user"]


def test_a_failed_gate_returns_what_is_missing_and_keeps_the_step(h: Harness,
                                                                  model: ScriptedModel) -> None:
    pid = h.project(problem="too short")
    model.queue += [[use("toolu_g", "advance_step", {"project_id": pid})], [text("Not yet.")]]
    h.turn("next")
    result = results_of(model.requests[1].messages[-1])["toolu_g"]
    body = json.loads(result["content"])
    assert body["ok"] is False
    assert any("at least 20 words (it has 2)" in m for m in body["missing"])
    assert h.get(pid).step == "problem"


def test_a_tool_outside_the_step_is_refused_and_not_run(h: Harness, model: ScriptedModel
                                                        ) -> None:
    pid = h.project()
    model.queue += [[use("toolu_x", "check_deployment",
                         {"project_id": pid, "url": "https://example.com"})],
                    [text("Let's finish step 1 first.")]]
    state = h.turn("URL: https://example.com")
    result = results_of(model.requests[1].messages[-1])["toolu_x"]
    assert result["is_error"] is True
    body = json.loads(result["content"])
    assert body["error"] == "check_deployment is not available at step problem"
    assert "create_project" in body["available"] and "check_deployment" not in body["available"]
    assert state["tool_calls"] == [{"name": "check_deployment",
                                    "input": {"project_id": pid, "url": "https://example.com"},
                                    "ok": False}]
    with session_scope(h.engine) as s:
        assert s.exec(select(Evidence)).all() == []


def test_an_unknown_tool_is_an_error_result(h: Harness, model: ScriptedModel) -> None:
    model.queue += [[use("toolu_x", "rm_rf", {})], [text("Sorry.")]]
    h.turn("hi")
    result = results_of(model.requests[1].messages[-1])["toolu_x"]
    assert result["is_error"] is True
    assert "rm_rf is not available before a project exists" in result["content"]


@pytest.mark.parametrize("bad_input", [
    "project_id=1",
    ["record_lesson"],
    None,
    {"project_id": "one", "kind": "worked", "text": "abc"},
    {"kind": "surprise", "text": "abc"},
    {"project_id": 1, "kind": "worked", "text": "abc", "extra": True},
])
def test_malformed_tool_input_is_an_error_result_and_the_turn_goes_on(
        h: Harness, model: ScriptedModel, bad_input: Any) -> None:
    h.project()
    model.queue += [[use("toolu_m", "record_lesson", bad_input)], [text("Let me fix that.")]]
    state = h.turn("Worked: abc")
    result = results_of(model.requests[1].messages[-1])["toolu_m"]
    assert result["is_error"] is True
    assert "record_lesson" in json.loads(result["content"])["error"]
    assert state["messages"][-1]["content"] == [text("Let me fix that.")]
    assert h.lessons() == []


def test_a_refusal_runs_no_tool(h: Harness, model: ScriptedModel) -> None:
    pid = h.project()
    model.queue.append(respond(
        text("I can't help with that."),
        use("toolu_r", "record_lesson", {"project_id": pid, "kind": "worked", "text": "xyz"}),
        stop_reason="refusal"))
    state = h.turn("something nasty")
    assert len(model.requests) == 1
    assert h.lessons() == []
    assert state["tool_calls"] == []
    last = state["messages"][-1]
    assert last["role"] == "assistant"
    assert last["content"] == [text("I can't help with that.")]


def test_a_refusal_with_only_a_tool_use_still_ends_with_text(h: Harness, model: ScriptedModel
                                                             ) -> None:
    pid = h.project()
    model.queue.append(respond(
        use("toolu_r", "record_lesson", {"project_id": pid, "kind": "worked", "text": "xyz"}),
        stop_reason="refusal"))
    state = h.turn("something nasty")
    assert h.lessons() == []
    last = state["messages"][-1]
    assert [b["type"] for b in last["content"]] == ["text"]


def test_a_model_that_keeps_calling_tools_is_stopped(engine: Engine, model: ScriptedModel
                                                     ) -> None:
    h = Harness(engine, model, max_model_calls=4)
    pid = h.project()
    counter = iter(range(100))
    model.default = lambda _req: [use(f"toolu_{next(counter)}", "get_portfolio", {})]
    state = h.turn("portfolio")
    assert len(model.requests) == 4
    assert state["calls"] == 4
    # Three calls ran their tool; the fourth response's tool_use was dropped.
    assert [c["name"] for c in state["tool_calls"]] == ["get_portfolio"] * 3
    last = state["messages"][-1]
    assert last["role"] == "assistant"
    assert not any(b["type"] == "tool_use" for b in last["content"])
    assert "stopped" in last["content"][0]["text"]
    assert h.get(pid).step == "problem"


def test_the_default_cap_on_model_calls_is_eight(h: Harness, model: ScriptedModel) -> None:
    counter = iter(range(100))
    model.default = lambda _req: [use(f"toolu_{next(counter)}", "get_portfolio", {})]
    h.turn("portfolio")
    assert len(model.requests) == 8


# -- prompt and tools follow the step --------------------------------------------------------

def test_system_prompt_and_tools_follow_the_step(h: Harness, model: ScriptedModel) -> None:
    model.default = lambda _req: [text("ok")]
    h.turn("hello")
    first = model.requests[-1]
    assert instructions(None) in first.system
    assert {t["name"] for t in first.tools} == {"create_project", "get_portfolio",
                                              "search_playbook"}
    assert first.records == {"project": None}

    pid = h.project(step="deploy")
    h.thread = "t2"
    h.turn("hello again")
    deploy = model.requests[-1]
    assert instructions("deploy") in deploy.system
    assert "Current step 3/6" in deploy.system
    names = {t["name"] for t in deploy.tools}
    assert "check_deployment" in names
    assert "create_project" not in names and "submit_postmortem" not in names
    assert deploy.records["project"]["id"] == pid
    assert deploy.metadata["step"] == "deploy" and deploy.metadata["project_id"] == pid
    assert deploy.metadata["purpose"] == "coach"
    # Every tool offered has a Messages-API definition.
    for tool in deploy.tools:
        assert set(tool) == {"name", "description", "input_schema"}
        assert tool["input_schema"]["type"] == "object"

    with session_scope(h.engine) as s:
        project = s.get(Project, pid)
        assert project is not None
        project.step = "harden"
        s.add(project)
    h.turn("and again")
    harden = model.requests[-1]
    assert "Current step 4/6" in harden.system
    assert {"record_evidence", "record_project_usage"} <= {t["name"] for t in harden.tools}
    assert "check_deployment" not in {t["name"] for t in harden.tools}


def test_create_project_makes_it_the_threads_project(h: Harness, model: ScriptedModel) -> None:
    model.queue += [[use("toolu_c", "create_project", {"title": "Handover"})],
                    [text("Started.")]]
    state = h.turn("Title: Handover")
    assert state["project_id"] is not None
    assert h.get(state["project_id"]).title == "Handover"
    # The second call already sees the project and step 1's tools.
    assert model.requests[1].records["project"]["id"] == state["project_id"]
    assert "update_project" in {t["name"] for t in model.requests[1].tools}


# -- the window ------------------------------------------------------------------------------

def turn_msgs(i: int, with_tool: bool = False) -> list[Message]:
    out: list[Message] = [{"role": "user", "content": [text(f"learner {i}")]}]
    if with_tool:
        out += [{"role": "assistant", "content": [use(f"toolu_{i}", "get_portfolio", {})]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": f"toolu_{i}",
                                              "content": "{}", "is_error": False}]}]
    out.append({"role": "assistant", "content": [text(f"coach {i}")]})
    return out


def conversation(n: int) -> list[Message]:
    return [m for i in range(n) for m in turn_msgs(i, with_tool=i % 2 == 0)]


def test_turn_starts_ignore_tool_results() -> None:
    messages = conversation(4)
    assert [messages[i]["content"][0]["text"] for i in turn_starts(messages)] == [
        "learner 0", "learner 1", "learner 2", "learner 3"]


def test_fold_keeps_short_conversations_as_they_are() -> None:
    messages = conversation(3)
    assert fold(messages, "old", 6) == (messages, "old")


def test_fold_waits_for_twice_the_window_then_keeps_the_last_turns() -> None:
    # Folding in chunks keeps the prefix stable between folds (prompt caching).
    eleven = conversation(11)
    assert fold(eleven, "", 6) == (eleven, "")
    messages = conversation(12)
    window, summary = fold(messages, "", 6)
    assert len(turn_starts(window)) == 6
    assert window[0] == {"role": "user", "content": [text("learner 6")]}
    assert window == messages[-len(window):]
    assert summary.splitlines() == [f"- learner: learner {i} | coach: coach {i}"
                                    for i in range(6)]


def test_fold_summary_is_bounded() -> None:
    previous = "\n".join(f"- earlier {i}" for i in range(10))
    window, summary = fold(conversation(30), previous, 6)
    lines = summary.splitlines()
    assert len(lines) == SUMMARY_LINES == 12
    # The newest folded turn is the last line; the oldest lines fell off.
    assert lines[-1] == "- learner: learner 23 | coach: coach 23"
    assert "- earlier 0" not in lines


def test_fold_truncates_long_turns_in_the_summary() -> None:
    messages = [{"role": "user", "content": [text("x " * 500)]},
                {"role": "assistant", "content": [text("y " * 500)]},
                *conversation(1)]
    _, summary = fold(messages, "", 1)
    assert len(summary) < 120 + 160 + 40


def test_complete_turns_drops_a_trailing_incomplete_turn() -> None:
    done = conversation(2)
    assert complete_turns(done) == done
    # The learner spoke but the model never answered.
    assert complete_turns([*done, {"role": "user", "content": [text("lost")]}]) == done
    # The model asked for a tool and the turn died before or after the tool ran.
    dangling = turn_msgs(9, with_tool=True)[:-1]
    assert complete_turns([*done, *dangling[:2]]) == done
    assert complete_turns([*done, *dangling]) == done
    assert complete_turns([{"role": "user", "content": [text("only")]}]) == []
    assert complete_turns([]) == []


def test_the_window_across_turns_stays_bounded_and_complete(engine: Engine,
                                                            model: ScriptedModel) -> None:
    h = Harness(engine, model, window_turns=2)
    model.default = lambda req: [text(f"reply to {req.messages[-1]['content'][0]['text']}")]
    for i in range(30):
        state = h.turn(f"message {i}")
        starts = turn_starts(state["messages"])
        # At most 2 * window_turns - 1 earlier turns, plus this one.
        assert len(starts) <= 2 * 2
        assert state["messages"][starts[-1]]["content"][0]["text"] == f"message {i}"
        assert state["turn_start"] == starts[-1]
        assert len(state["summary"].splitlines()) <= SUMMARY_LINES
        if i == 4:
            # Four complete turns reached twice the window: the oldest two were folded.
            assert [m["content"][0]["text"] for m in state["messages"]] == [
                "message 2", "reply to message 2", "message 3", "reply to message 3",
                "message 4", "reply to message 4"]
            assert state["summary"].splitlines() == [
                f"- learner: message {j} | coach: reply to message {j}" for j in range(2)]
            assert "message 1 | coach: reply to message 1" in model.requests[-1].system
    # The last fold (at message 28) took messages 24 and 25; 26-28 are still in the window.
    assert state["summary"].splitlines()[-1] == "- learner: message 25 | coach: reply to message 25"
    assert len(state["summary"].splitlines()) == SUMMARY_LINES
    assert "Earlier in this conversation:" in model.requests[-1].system
