"""The post-mortem interview at step 5 (agent/interview.py), offline, through real turns: the
demo learner asks for a draft, answers the coach's questions one at a time in plain words,
each answer is stored with its kind and the draft redrafted, and the learner reaches a
post-mortem that passes the step-5 gate without writing it from scratch."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import select

from agent.demo import local_app, make_repo, script
from agent.offline import OfflineCoach
from agent.session import Coach, TurnResult
from memory.checkpoints import open_checkpointer
from memory.models import Evidence, Lesson, PostmortemVersion, Project
from memory.store import session_scope

QUESTION = re.compile(r"\((\d+) left; answer in plain words, or say `skip`\): (.+)")


class Chat:
    def __init__(self, coach: Coach):
        self.coach = coach
        self.thread = coach.thread()

    def say(self, text: str) -> TurnResult:
        result = self.coach.turn(self.thread, text)
        assert result.error is None, result.error
        return result


@pytest.fixture
def chat(engine: Engine, sqlite_url: str, tmp_path: Path) -> Iterator[Chat]:
    with open_checkpointer(sqlite_url) as saver, local_app() as url:
        coach = Coach(engine, saver, user="demo", model=OfflineCoach(), allow_private_urls=True)
        c = Chat(coach)
        repo = make_repo(tmp_path)
        # The demo learner up to step 5 with its lessons, before it writes anything itself.
        for heading, message in script(str(repo), url):
            if heading.startswith("Step 5"):
                break
            c.say(message)
        yield c


def rows(engine: Engine, model: Any) -> list[Any]:
    with session_scope(engine) as s:
        return list(s.exec(select(model).order_by(model.id)).all())


def answer_for(question: str) -> str:
    """A learner's plain answer, in the first person, to any question."""
    topic = " ".join(question.split()[:6]).rstrip("?,:")
    return (f"I can answer that one: on {topic.lower()}, I kept notes on my old ward and "
            "checked each case by hand with a colleague before trusting the tool with it.")


def test_the_learner_answers_the_questions_and_reaches_a_passing_post_mortem(
        chat: Chat, engine: Engine) -> None:
    first = chat.say("draft post-mortem")
    assert [c["name"] for c in first.tool_calls] == ["draft_postmortem"]
    assert re.search(r"Draft version 1: [\d,]+ words \(the gate needs 1,200–2,000", first.reply)
    asked = QUESTION.search(first.reply)
    assert asked, first.reply
    left = int(asked.group(1))
    assert left >= 10
    # The draft text follows the question, so the question is what the learner reads first.
    assert first.reply.index(asked.group(2)) < first.reply.index("# Post-mortem:")

    answers = 0
    reply = first.reply
    while (asked := QUESTION.search(reply)) is not None:
        question = asked.group(2)
        result = chat.say(answer_for(question))
        answers += 1
        names = [c["name"] for c in result.tool_calls]
        assert names[-1] == "draft_postmortem" and names[0] in ("record_lesson",
                                                                "record_evidence")
        assert "Draft version" in result.reply and "words" in result.reply
        assert question not in (QUESTION.search(result.reply) or re.search("$", "")).group(0)
        reply = result.reply
        assert answers < 40, "the interview does not end"
    assert answers >= left  # one answer per question, plus follow-ups to new lessons
    assert "say `submit draft`" in reply and "it passes the step-5 checks" in reply

    # Every answer is stored with its kind: notes keyed to their question, or lessons.
    notes = [e for e in rows(engine, Evidence) if e.kind == "other"]
    assert notes and all(e.details["answers"] and e.details["kind"] for e in notes)
    assert {lesson.kind for lesson in rows(engine, Lesson)} >= {"worked", "didnt_work",
                                                                 "tradeoff", "decision"}
    draft = rows(engine, PostmortemVersion)[-1]
    assert draft.source == "draft" and "[TODO" not in draft.text
    assert 1200 <= draft.words <= 2000
    assert draft.report["failed"] == [] and draft.report["grounding"]["grounded"] is True
    assert all(s["sources"] for s in draft.report["sentences"] if s["kind"] in ("fact", "quote"))

    done = chat.say("submit draft")
    assert [c["name"] for c in done.tool_calls] == ["draft_postmortem", "submit_postmortem",
                                                    "advance_step"]
    assert all(c["ok"] for c in done.tool_calls)
    assert "Gate passed: postmortem → repeat." in done.reply
    assert "---" not in done.reply  # the draft is not printed again
    [project] = rows(engine, Project)[:1]
    assert project.step == "repeat"
    submission = rows(engine, PostmortemVersion)[-1]
    assert submission.source == "submission" and submission.report["failed"] == []


def test_skip_keeps_the_question_in_the_draft_and_moves_on(chat: Chat, engine: Engine) -> None:
    first = chat.say("draft post-mortem")
    asked = QUESTION.search(first.reply)
    assert asked
    skipped = chat.say("skip")
    assert "Skipped; its [TODO] stays in the draft" in skipped.reply
    after = QUESTION.search(skipped.reply)
    assert after and after.group(2) != asked.group(2)
    assert int(after.group(1)) == int(asked.group(1)) - 1
    assert f"[TODO: {asked.group(2).split(' (about')[0]}]" in rows(
        engine, PostmortemVersion)[-1].text


def test_submitting_a_draft_that_fails_the_gate_is_refused(chat: Chat, engine: Engine) -> None:
    chat.say("draft post-mortem")
    with session_scope(engine) as s:  # a project whose draft is too short: no lessons
        for lesson in s.exec(select(Lesson)).all():
            s.delete(lesson)
        for e in s.exec(select(Evidence).where(Evidence.kind != "deployment")).all():
            s.delete(e)
    refused = chat.say("submit draft")
    assert "does not pass yet, so I haven't submitted it" in refused.reply
    assert "submit_postmortem" not in [c["name"] for c in refused.tool_calls]
    assert all(v.source == "draft" for v in rows(engine, PostmortemVersion))


def test_a_stated_ci_gate_the_audit_did_not_find_is_asked_first(chat: Chat,
                                                                 engine: Engine) -> None:
    with session_scope(engine) as s:
        project = s.exec(select(Project)).first()
        assert project is not None
        s.add(Evidence(project_id=project.id, kind="ci_gate", details={
            "provider": "GitHub Actions", "config_path": ".github/workflows/release.yml",
            "description": "GitHub Actions .github/workflows/release.yml blocks merges"}))
    first = chat.say("draft post-mortem")
    asked = QUESTION.search(first.reply)
    assert asked and "Your records disagree here, so I'd rather ask than guess" in first.reply
    assert ".github/workflows/release.yml" in asked.group(2)
    assert "found .github/workflows/evals.yml instead" in asked.group(2)
    draft = rows(engine, PostmortemVersion)[-1]
    assert "The repository audit found CI configuration" not in draft.text
    # The learner's answer settles it, in their words, and the question is gone.
    answered = chat.say("The audit is right: evals.yml is the gate, release.yml only deploys.")
    assert "Your records disagree" not in answered.reply
    text = rows(engine, PostmortemVersion)[-1].text
    assert "The audit is right: evals.yml is the gate, release.yml only deploys." in text


def test_a_draft_with_questions_open_is_not_submitted(chat: Chat, engine: Engine) -> None:
    chat.say("draft post-mortem")
    refused = chat.say("submit draft")
    assert "[TODO]s, so I haven't submitted it" in refused.reply
    assert "submit_postmortem" not in [c["name"] for c in refused.tool_calls]
    assert rows(engine, Project)[0].step == "postmortem"


def test_a_question_of_the_learners_own_is_not_stored_as_an_answer(chat: Chat,
                                                                   engine: Engine) -> None:
    chat.say("draft post-mortem")
    before = len(rows(engine, Evidence))
    for text in ("What makes a good eval set?", "thanks", "undo"):
        said = chat.say(text)
        assert "record_evidence" not in [c["name"] for c in said.tool_calls], text
        assert "record_lesson" not in [c["name"] for c in said.tool_calls], text
    assert len(rows(engine, Evidence)) == before
