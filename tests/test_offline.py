"""The offline coach policy, driven through the real graph and a real SQLite store."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import select

from agent.demo import local_app
from agent.offline import OfflineCoach
from agent.session import Coach, TurnResult
from memory.checkpoints import open_checkpointer
from memory.models import (
    Evidence,
    LedgerEntry,
    Lesson,
    PostmortemVersion,
    Project,
    StepTransition,
)
from memory.store import session_scope
from memory.vocabulary import CAPABILITIES

PROBLEM = ("Night-shift nurses hand over ten to twenty patients in a few minutes from "
           "handwritten notes, and abnormal vitals get lost when the ward is busy and tired.")
FIRST_MESSAGE = (f"Title: Handover Helper Problem: {PROBLEM} Audience: ward nurses "
                 "Why me: six years of night shifts Success: flags 95% of abnormal vitals "
                 "Capabilities: structured_output, evals_ci")


class Session:
    """One learner talking to the offline coach on one thread."""

    def __init__(self, coach: Coach, engine: Engine) -> None:
        self.coach = coach
        self.engine = engine
        self.thread = coach.thread()
        self.results: list[TurnResult] = []

    def say(self, text: str) -> TurnResult:
        result = self.coach.turn(self.thread, text)
        assert result.error is None, result.error
        self.results.append(result)
        return result

    def project(self, project_id: int | None = None) -> Project:
        with session_scope(self.engine) as s:
            if project_id is None:
                found = s.exec(select(Project).order_by(Project.id)).first()  # type: ignore[arg-type]
            else:
                found = s.get(Project, project_id)
            assert found is not None
            return found

    def set(self, project_id: int, **fields: Any) -> None:
        with session_scope(self.engine) as s:
            project = s.get(Project, project_id)
            assert project is not None
            for name, value in fields.items():
                setattr(project, name, value)
            s.add(project)

    def rows(self, model: type) -> list[Any]:
        with session_scope(self.engine) as s:
            return list(s.exec(select(model)).all())


@pytest.fixture
def coach(engine: Engine, sqlite_url: str) -> Iterator[Coach]:
    with open_checkpointer(sqlite_url) as saver:
        yield Coach(engine, saver, user="ann", model=OfflineCoach(), allow_private_urls=True)


@pytest.fixture
def me(coach: Coach, engine: Engine) -> Session:
    return Session(coach, engine)


def names(result: TurnResult) -> list[str]:
    return [c["name"] for c in result.tool_calls]


def started(me: Session, **fields: Any) -> Project:
    """A project at step 1 with just a title, then any fields set directly."""
    me.say("Title: Handover Helper")
    project = me.project()
    assert project.id is not None
    if fields:
        me.set(project.id, **fields)
    return me.project(project.id)


# -- step 1 --------------------------------------------------------------------------------

def test_all_five_fields_at_once_create_a_project_and_pass_the_gate(me: Session) -> None:
    result = me.say(FIRST_MESSAGE)
    assert names(result) == ["create_project", "advance_step"]
    assert all(c["ok"] for c in result.tool_calls)
    assert result.step == "build"
    project = me.project(result.project_id)
    assert (project.title, project.problem, project.audience) == (
        "Handover Helper", PROBLEM, "ward nurses")
    assert project.personal_context == "six years of night shifts"
    assert project.success_criteria == "flags 95% of abnormal vitals"
    assert project.capabilities == ["structured_output", "evals_ci"]
    assert project.difficulty == 2
    assert "Gate passed: problem → build." in result.reply
    assert "Where is the code?" in result.reply  # the next question
    [transition] = me.rows(StepTransition)
    assert (transition.from_step, transition.to_step) == ("problem", "build")


def test_a_teacher_in_four_plain_sentences_gets_every_field_as_she_meant_it(
        me: Session) -> None:
    """A greeting that introduces her, the problem with its audience, a name, a criterion:
    each field holds what she said it for, and the problem gate passes."""
    for text in ("Hi! I'm a chemistry teacher at a secondary school and I'd like some help.",
                 "Every week I spend about three hours writing practice quizzes for four "
                 "classes, and the questions I find online never match what we covered, which "
                 "is a problem for secondary school science teachers.",
                 "Let's call it QuizForge.",
                 "Success would be that 8 out of 10 generated questions need no edits before I "
                 "use them."):
        me.say(text)
    p = me.project()
    assert p.title == "QuizForge"
    assert p.personal_context == "I'm a chemistry teacher at a secondary school"
    assert p.audience == "secondary school science teachers"
    assert p.problem.startswith("Every week I spend about three hours")
    assert p.problem.endswith("what we covered, which is a problem for secondary school "
                              "science teachers.")
    assert p.success_criteria == "8 out of 10 generated questions need no edits before I use them"
    assert p.step == "build"


def test_the_same_teacher_in_other_words_gets_the_same_fields(me: Session) -> None:
    """A workplace instead of a job title, "all have this problem", and "I'd call it a
    success if …" (a verdict, not a name)."""
    for text in ("Hello, I teach chemistry at a secondary school.",
                 "Every week I spend about three hours writing practice quizzes for four "
                 "classes, and the questions I find online never match what we covered; "
                 "secondary school science teachers all have this problem.",
                 "I'd name it QuizForge.",
                 "I'd call it a success if 8 out of 10 generated questions need no edits "
                 "before I use them."):
        me.say(text)
    p = me.project()
    assert p.title == "QuizForge"
    assert p.personal_context == "I teach chemistry at a secondary school"
    assert p.audience == "secondary school science teachers"
    assert p.problem.startswith("Every week I spend about three hours")
    assert p.success_criteria == "8 out of 10 generated questions need no edits before I use them"
    assert p.step == "build"


def test_a_plain_answer_answers_the_current_question(me: Session) -> None:
    project = started(me)
    plain = ("Night nurses hand over many patients in minutes from handwritten notes "
             "and abnormal vitals get lost when the ward is busy and tired every night")
    assert len(plain.split()) == 25
    result = me.say(plain)
    assert names(result) == ["update_project"]
    assert me.project(project.id).problem == plain
    assert f"Saved the problem: “{plain[:40]}" in result.reply  # the value is shown back
    # ... and now the coach asks for the next missing thing, which the next plain answer fills.
    assert "Who has this problem?" in result.reply
    me.say("ward nurses on night shifts")
    assert me.project(project.id).audience == "ward nurses on night shifts"


def test_a_short_first_message_is_a_greeting_then_a_short_answer_is_a_title(
        me: Session) -> None:
    hello = me.say("hi there")
    assert names(hello) == []
    assert "What problem do you want to solve?" in hello.reply
    result = me.say("Handover Helper")
    assert names(result) == ["create_project"]
    assert (me.project().title, me.project().problem) == ("Handover Helper", "")


def test_a_long_first_message_is_the_problem_with_a_provisional_title(me: Session) -> None:
    result = me.say(PROBLEM)
    assert names(result) == ["create_project"]
    project = me.project()
    assert project.problem == PROBLEM
    assert project.title == "Night-shift nurses hand over ten to"
    assert "Who has this problem?" in result.reply


def test_a_vague_problem_is_refused_with_its_word_count(me: Session) -> None:
    result = me.say("Title: Handover Problem: nurses lose vitals at handover Audience: nurses "
                    "Why me: I was one Success: 95% of vitals flagged")
    assert names(result) == ["create_project"]  # no gate call: something is missing
    assert result.step == "problem"
    assert "at least 20 words (it has 5)" in result.reply
    assert me.project().step == "problem"


def test_a_vague_plain_problem_is_stored_but_the_gate_says_how_short(me: Session) -> None:
    started(me)
    result = me.say("nurses lose vitals")
    assert result.step == "problem"
    assert "at least 20 words (it has 3)" in result.reply
    assert "Describe the problem in at least 20 words" in result.reply


def test_a_success_criterion_without_a_number_is_not_measurable(me: Session) -> None:
    result = me.say(f"Title: H Problem: {PROBLEM} Audience: nurses Why me: I was one "
                    "Success: nurses are happier")
    assert result.step == "problem"
    assert "a success criterion with a number in it" in result.reply


# -- skipping ahead, bad answers --------------------------------------------------------------

def test_a_url_at_step_problem_is_not_checked(me: Session, monkeypatch: pytest.MonkeyPatch
                                              ) -> None:
    fetched: list[str] = []
    monkeypatch.setattr("tools.evidence.check_deployment_url",
                        lambda url, **_kw: fetched.append(url))
    project = started(me)
    result = me.say("URL: https://example.com")
    assert fetched == []
    assert all(not c["ok"] for c in result.tool_calls if c["name"] == "check_deployment")
    # Either the policy declines to plan it or the graph refuses it; either way the reply
    # says the URL belongs to a later step.
    assert "step problem" in result.reply or "step 3" in result.reply
    assert result.step == "problem"
    assert me.project(project.id).step == "problem"
    assert me.rows(Evidence) == []


def test_malformed_evals_get_a_clear_reply_and_nothing_is_stored(me: Session) -> None:
    project = started(me, step="harden")
    result = me.say("Evals: lots")
    assert result.tool_calls == []
    assert "couldn't read the number of eval cases" in result.reply
    assert "`Evals: 24 cases, 91% pass, graded by exact match`" in result.reply
    assert me.rows(Evidence) == []
    assert me.project(project.id).step == "harden"


def test_one_malformed_answer_stores_nothing_from_that_message(me: Session) -> None:
    started(me, step="harden")
    result = me.say("Evals: 24 cases, 91% pass, graded by exact match Cost: cheap")
    assert result.tool_calls == []
    assert "`Cost: $0.004 per request`" in result.reply
    assert me.rows(Evidence) == []


def test_an_unknown_capability_gets_the_vocabulary(me: Session) -> None:
    project = started(me, capabilities=["retrieval"], difficulty=1)
    result = me.say("Capabilities: retrieval, blockchain")
    assert [c["ok"] for c in result.tool_calls] == [False]
    assert "blockchain" in result.reply
    assert ", ".join(CAPABILITIES) in result.reply
    assert me.project(project.id).capabilities == ["retrieval"]


def test_a_question_is_not_stored_as_an_answer(me: Session) -> None:
    project = started(me)
    result = me.say("Does the problem have to be about work, or can it be a hobby?")
    assert result.tool_calls == []
    assert result.reply.startswith("From the playbook, “Pick a problem you know from the inside”")
    assert result.reply.endswith("Describe the problem in at least 20 words: what happens "
                                 "today, and what goes wrong? (`Problem: …`)")
    after = me.project(project.id)
    assert (after.problem, after.audience) == ("", "")


def test_a_question_before_any_project_creates_nothing(me: Session) -> None:
    result = me.say("What makes a good portfolio project?")
    assert result.tool_calls == []
    assert result.project_id is None
    assert me.rows(Project) == []


# -- commands --------------------------------------------------------------------------------

def test_status_without_and_with_a_project(me: Session) -> None:
    assert "You have no active project" in me.say("status").reply
    started(me)
    reply = me.say("status").reply
    assert "Project #1 “Handover Helper” is at step 1/6" in reply
    assert "Still needed for the problem gate" in reply
    assert "(it has 0)" in reply


def test_help_lists_the_commands_and_why_the_step_matters(me: Session) -> None:
    started(me)
    result = me.say("help")
    assert result.tool_calls == []
    assert "Commands: `status`, `portfolio`, `next`" in result.reply
    assert "Why step 1 matters" in result.reply


def test_portfolio_lists_projects(me: Session) -> None:
    assert "Your portfolio is empty so far." in me.say("portfolio").reply
    started(me, capabilities=["retrieval", "agents"], difficulty=2)
    result = me.say("portfolio")
    assert names(result) == ["get_portfolio"]
    assert ("Your portfolio: 0 done (still building: 3 done projects make you ready to "
            "apply):") in result.reply
    assert "- #1 Handover Helper: step problem, difficulty 2" in result.reply


def test_next_checks_the_gate(me: Session) -> None:
    project = started(me)
    refused = me.say("next")
    assert names(refused) == ["advance_step"]
    assert refused.step == "problem"
    assert "Still needed for the problem gate" in refused.reply
    assert project.id is not None
    me.set(project.id, problem=PROBLEM, audience="nurses", personal_context="I was one",
           success_criteria="95% flagged")
    passed = me.say("next")
    assert names(passed) == ["advance_step"]
    assert passed.step == "build"
    assert "Gate passed: problem → build." in passed.reply


def test_draft_post_mortem_is_a_command_not_an_answer(me: Session) -> None:
    project = started(me)
    result = me.say("draft post-mortem")
    assert not {"update_project", "create_project", "submit_postmortem"} & set(names(result))
    after = me.project(project.id)
    assert (after.problem, after.audience, after.step) == ("", "", "problem")


# -- lessons ---------------------------------------------------------------------------------

def test_lessons_are_recorded_at_any_step(me: Session) -> None:
    started(me)
    result = me.say("Worked: real notes Didn't work: one prompt Tradeoff: latency for recall "
                    "Worked: small scope")
    assert names(result) == ["record_lesson"] * 4
    assert sorted((lesson.kind, lesson.text) for lesson in me.rows(Lesson)) == [
        ("didnt_work", "one prompt"), ("tradeoff", "latency for recall"),
        ("worked", "real notes"), ("worked", "small scope")]
    assert "Noted what worked for your post-mortem." in result.reply


# -- step 6 ----------------------------------------------------------------------------------

def test_the_next_project_must_be_harder(me: Session) -> None:
    first = started(me, step="repeat", capabilities=["retrieval", "agents"], difficulty=2)
    assert first.id is not None

    without = me.say("Title: Ward-round Agent")
    assert without.tool_calls == []
    assert "capabilities" in without.reply

    equal = me.say("Title: Ward-round Agent Capabilities: tool_use, streaming")
    assert names(equal) == ["start_next_project"]
    assert not equal.tool_calls[0]["ok"]
    assert "difficulty 2 is not above 2" in equal.reply
    assert len(me.rows(Project)) == 1
    assert me.project(first.id).step == "repeat"

    harder = me.say("Title: Ward-round Agent Capabilities: tool_use, streaming, retrieval")
    assert names(harder) == ["start_next_project", "advance_step"]
    assert all(c["ok"] for c in harder.tool_calls)
    assert me.project(first.id).step == "done"
    second = me.project(harder.project_id)
    assert second.id != first.id
    assert (second.title, second.step, second.difficulty) == ("Ward-round Agent", "problem", 3)
    assert second.previous_project_id == first.id
    assert harder.step == "problem"
    assert "Gate passed: repeat → done." in harder.reply
    # The thread now coaches the new project.
    assert "“Ward-round Agent” is at step 1/6" in me.say("status").reply


# -- usage and the ledger ----------------------------------------------------------------------

def test_usage_is_estimated_tokens_at_no_cost(me: Session) -> None:
    result = me.say(FIRST_MESSAGE)
    assert result.model == "offline"
    assert result.usage["input_tokens"] > 0 and result.usage["output_tokens"] > 0
    assert result.usage["cache_read_input_tokens"] == 0
    assert result.cost_usd == Decimal(0)
    rows = me.rows(LedgerEntry)
    # One call planned the project, one asked the gate, one wrote the reply.
    assert len(rows) == 3
    for row in rows:
        assert (row.model, row.purpose, row.cost_usd, row.estimated, row.status) == (
            "offline", "coach", Decimal(0), True, "ok")
        assert row.thread_id == me.thread
        assert row.input_tokens > 0
    assert sum(r.input_tokens for r in rows) == result.usage["input_tokens"]
    assert sum(r.output_tokens for r in rows) == result.usage["output_tokens"]
    # The first call was made before the project existed; later ones are filed under it.
    assert sorted((r.project_id, r.step) for r in rows if r.project_id) == [
        (result.project_id, "build"), (result.project_id, "problem")]

    me.say("status")
    assert len(me.rows(LedgerEntry)) == 4  # a command is one call


def test_the_offline_coach_is_deterministic(engine: Engine, sqlite_url: str) -> None:
    from seam.model import ModelRequest

    request = ModelRequest(system="s", tools=[], records={"project": None},
                           messages=[{"role": "user",
                                      "content": [{"type": "text", "text": FIRST_MESSAGE}]}])
    a, b = OfflineCoach().complete(request), OfflineCoach().complete(request)
    assert a.content == b.content and a.id == b.id
    assert a.stop_reason == "tool_use" and a.estimated


# -- the whole walk --------------------------------------------------------------------------

@pytest.fixture
def app_url() -> Iterator[str]:
    with local_app() as url:  # the demo's own page
        yield url


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "handover"
    (path / ".github" / "workflows").mkdir(parents=True)
    (path / "evals").mkdir()
    (path / "app.py").write_text("from opentelemetry import trace\n")
    (path / "evals" / "cases.jsonl").write_text('{"note": "BP 90/60"}\n' * 24)
    # The harden gate holds the stated CI against the repository: this one runs the evals.
    (path / ".github" / "workflows" / "evals.yml").write_text(
        "on: [pull_request]\njobs:\n  evals:\n    steps:\n      - run: pytest evals\n")
    env = {**os.environ, "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_AUTHOR_NAME": "Ann", "GIT_AUTHOR_EMAIL": "ann@example.invalid",
           "GIT_COMMITTER_NAME": "Ann", "GIT_COMMITTER_EMAIL": "ann@example.invalid"}
    for args in (["init", "-q"], ["add", "."], ["commit", "-q", "-m", "MVP"]):
        subprocess.run(["git", "-C", str(path), *args], check=True, env=env,
                       capture_output=True, timeout=30)
    return path


def postmortem_text() -> str:
    sentence = ("the handover tool taught me that small scope and real notes beat clever "
                "prompts when tired people read the output at the end of a long shift")
    sections = []
    for heading in ("What worked", "What didn't work", "Tradeoffs"):
        body = " ".join(f"{sentence.capitalize()}." for _ in range(15))
        sections.append(f"## {heading}\n\n{body}")
    return "# Post-mortem\n\n" + "\n\n".join(sections)


def test_a_learner_walks_all_six_steps(me: Session, repo: Path, app_url: str) -> None:
    assert me.say(FIRST_MESSAGE).step == "build"

    # A non-repository path is refused with the reason; nothing moves.
    bad = me.say(f"Repo: {repo.parent / 'nope'}")
    assert bad.step == "build" and "is not a git checkout" in bad.reply

    build = me.say(f"Repo: {repo} MVP: summarise a note; flag vitals; copy as text "
                   "Usage: ran it on twelve notes from my old ward")
    assert names(build) == ["update_project", "update_project", "audit_repository",
                            "advance_step"]
    assert build.step == "deploy"
    project = me.project(build.project_id)
    assert project.repo == str(repo)
    assert project.mvp_scope == ["summarise a note", "flag vitals", "copy as text"]

    # A plain message with a URL answers the deployment question.
    deploy = me.say(f"it runs at {app_url}")
    assert names(deploy) == ["check_deployment", "advance_step"]
    assert deploy.tool_calls[0]["input"]["url"] == app_url
    assert deploy.step == "harden"
    assert "HTTP 200" in deploy.reply

    partial = me.say("Evals: 24 cases, 91% pass, graded by exact match "
                     "CI: GitHub Actions .github/workflows/evals.yml")
    assert names(partial) == ["record_evidence", "record_evidence"]
    assert partial.step == "harden"
    assert "the tracing tool you use" in partial.reply
    harden = me.say(f"Tracing: Langfuse {app_url}trace/1 Cost: $0.004 per request")
    assert names(harden) == ["record_evidence", "record_evidence", "advance_step"]
    assert harden.step == "postmortem"
    evidence = {e.kind: e.details for e in me.rows(Evidence)}
    assert evidence["evals"]["cases"] == 24 and evidence["evals"]["pass_rate"] == 0.91
    assert evidence["cost_tracking"]["cost_usd"] == "0.004"
    assert evidence["cost_tracking"]["per"] == "request"

    # A short plain message at step 5 is not taken as the post-mortem.
    short = me.say("I will write it tonight")
    assert short.tool_calls == [] and short.step == "postmortem"
    assert me.rows(PostmortemVersion) == []

    text = postmortem_text()
    post = me.say("Post-mortem: " + text)
    assert names(post) == ["submit_postmortem", "advance_step"]
    assert post.step == "repeat"
    [version] = me.rows(PostmortemVersion)
    assert version.text == text and version.source == "submission"

    nxt = me.say("Title: Ward-round Agent Problem: doctors re-read notes "
                 "Capabilities: retrieval, tool_use, agents")
    assert names(nxt) == ["start_next_project", "advance_step"]
    assert me.project(build.project_id).step == "done"
    assert nxt.project_id != build.project_id

    transitions = [(t.from_step, t.to_step) for t in me.rows(StepTransition)]
    assert transitions == [("problem", "build"), ("build", "deploy"), ("deploy", "harden"),
                           ("harden", "postmortem"), ("postmortem", "repeat"),
                           ("repeat", "done")]


# -- plain sentences: understood, shown back, undoable -----------------------------------------

def test_a_greeting_that_explains_creates_no_project_and_keeps_the_experience(
        me: Session) -> None:
    hello = me.say("hi! I'm not really sure how this works. I was a nurse for 8 years")
    assert names(hello) == [] and me.rows(Project) == []
    assert "I was a nurse for 8 years" in hello.reply
    protest = me.say("wait, that's not my project, I was just saying hello")
    assert names(protest) == [] and me.rows(Project) == []
    first = me.say(PROBLEM)
    assert names(first) == ["create_project"]
    project = me.project()
    assert (project.problem, project.personal_context) == (PROBLEM, "I was a nurse for 8 years")
    assert "working title" in first.reply


def test_every_stored_value_is_shown_and_undo_puts_back_the_one_before(me: Session) -> None:
    project = started(me)
    first = me.say("it's a problem for ward nurses")
    assert "Saved the audience: “ward nurses”" in first.reply
    second = me.say("no, I meant nurses on busy medical wards")
    assert "Saved the audience: “nurses on busy medical wards”" in second.reply
    assert me.project(project.id).audience == "nurses on busy medical wards"
    undone = me.say("undo")
    assert names(undone) == ["update_project"]
    assert "Undone: the audience is back to “ward nurses”" in undone.reply
    assert me.project(project.id).audience == "ward nurses"
    again = me.say("undo that please")
    assert "empty again" in again.reply
    assert me.project(project.id).audience == ""
    nothing = me.say("undo")
    assert names(nothing) == [] and me.project(project.id).title == "Handover Helper"


def test_a_rename_is_a_title_not_a_repository(me: Session) -> None:
    project = started(me)
    result = me.say("can you rename the project to Ward Handover?")
    assert names(result) == ["update_project"]
    assert result.tool_calls[0]["input"] == {"project_id": project.id, "title": "Ward Handover"}
    assert me.project(project.id).repo == ""


def test_a_mistyped_command_is_a_command_not_a_problem(me: Session) -> None:
    project = started(me)
    result = me.say("stauts")
    assert names(result) == [] and "is at step 1/6" in result.reply
    assert me.project(project.id).problem == ""


def test_two_facts_in_one_sentence_are_both_stored(me: Session) -> None:
    project = started(me)
    me.say("it's for nurses on busy wards, I was one for 8 years")
    after = me.project(project.id)
    assert (after.audience, after.personal_context) == ("nurses on busy wards",
                                                        "I was one for 8 years")


def test_capabilities_are_asked_for_and_read_from_plain_words(me: Session) -> None:
    project = started(me)
    asked = me.say("it's a problem for ward nurses")
    assert "Which capabilities will it use?" in asked.reply
    me.say("it searches over the old notes and calls the lab API")
    assert me.project(project.id).capabilities == ["retrieval", "tool_use"]
    assert me.project(project.id).difficulty == 2


def test_evals_in_words_complete_each_other_without_looping(me: Session) -> None:
    started(me, step="harden")
    me.say("12 cases, graded by exact match")
    me.say("10 out of 12 passed, so about 83%")
    evals = [e.details for e in me.rows(Evidence) if e.kind == "evals"]
    assert evals[-1] == {"cases": 12, "pass_rate": 0.83, "grader": "exact match"}


def test_a_tracing_sentence_stores_the_tool_and_the_link_apart(me: Session) -> None:
    started(me, step="harden")
    me.say("ok I added langfuse, here's a trace (https://cloud.langfuse.com/trace/abc)")
    [obs] = [e.details for e in me.rows(Evidence) if e.kind == "observability"]
    assert obs == {"tool": "Langfuse", "link": "https://cloud.langfuse.com/trace/abc"}


def test_lessons_in_plain_words_are_recorded(me: Session) -> None:
    started(me, step="postmortem")
    result = me.say("the thing that worked best was the tiny scope, what didn't work was my "
                    "first prompt, I chose regex over an LLM because it is deterministic")
    assert names(result) == ["record_lesson"] * 3
    kinds = sorted(lesson.kind for lesson in me.rows(Lesson))
    assert kinds == ["didnt_work", "tradeoff", "worked"]


def test_a_question_at_a_later_step_is_answered_for_that_step(me: Session) -> None:
    started(me, step="build")
    result = me.say("what do you mean by a usage note?")
    assert result.tool_calls == []
    assert result.reply.startswith("From the playbook")
    # ... then one example for what this project needs next, at its own step.
    assert "“Handover Helper” needs next, and a sentence I'd understand: where the code is" \
        in result.reply
    assert "Repo: ~/code/my-tool" in me.say("help").reply  # step 2's labels, not step 1's


def test_status_lists_what_is_recorded_for_the_current_step(me: Session) -> None:
    started(me)
    me.say("it's a problem for ward nurses")
    status = me.say("status").reply
    assert "Recorded so far for this step" in status
    assert "the title: “Handover Helper”" in status
    assert "the audience: “ward nurses”" in status


def test_a_labelled_repo_does_not_swallow_the_rest_of_the_sentence(me: Session, repo: Path
                                                                    ) -> None:
    project = started(me, step="build")
    result = me.say(f"Repo: {repo} and the features are summarise notes, flag vitals")
    assert names(result)[:3] == ["update_project", "audit_repository", "update_project"]
    after = me.project(project.id)
    assert after.repo == str(repo)
    assert after.mvp_scope == ["summarise notes", "flag vitals"]


def test_a_labelled_value_the_strict_form_cannot_read_gets_a_sentence_reading(
        me: Session) -> None:
    started(me, step="harden")
    me.say("Evals: 100 replayed incidents, 93 pass, graded by exact match")
    [evals] = [e.details for e in me.rows(Evidence) if e.kind == "evals"]
    assert evals == {"cases": 100, "pass_rate": 0.93, "grader": "exact match"}
    refused = me.say("Evals: lots")  # still nothing to read: the form is shown, nothing stored
    assert refused.tool_calls == [] and "`Evals: 24 cases" in refused.reply
