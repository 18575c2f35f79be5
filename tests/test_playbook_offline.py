"""The offline coach answers questions from the playbook mid-interview, changing nothing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlmodel import select

from agent.offline import OfflineCoach
from agent.session import Coach
from memory.checkpoints import open_checkpointer
from memory.models import Evidence, Lesson, Project
from memory.store import session_scope
from tests.test_offline import FIRST_MESSAGE, Session


@pytest.fixture
def me(engine: Engine, sqlite_url: str) -> Iterator[Session]:
    with open_checkpointer(sqlite_url) as saver:
        yield Session(Coach(engine, saver, user="ann", model=OfflineCoach()), engine)


def snapshot(me: Session) -> tuple[list[dict], int, int]:
    with session_scope(me.engine) as s:
        projects = [p.model_dump() for p in s.exec(select(Project)).all()]
        return (projects, len(s.exec(select(Evidence)).all()),
                len(s.exec(select(Lesson)).all()))


def test_a_question_at_the_harden_step_gets_the_entry_and_the_interview_resumes(
        me: Session) -> None:
    me.say(FIRST_MESSAGE)
    project = me.project()
    me.set(project.id, step="harden")
    before = snapshot(me)
    result = me.say("what is an eval? is it like a unit test?")
    assert result.tool_calls == []
    assert result.reply.startswith("From the playbook, “Evals versus unit tests”:")
    assert "Try this:" in result.reply
    assert "You're at" not in result.reply  # the entry is for this very step
    assert result.reply.endswith("(`Evals: 24 cases, 91% pass, graded by exact match`)")
    assert snapshot(me) == before
    # The interview carries on: a plain answer now answers the gate's question.
    after = me.say("Evals: 12 cases, 83% pass, graded by exact match")
    assert [c["name"] for c in after.tool_calls] == ["record_evidence"]


def test_a_question_the_playbook_cannot_answer_is_declined_honestly(me: Session) -> None:
    me.say(FIRST_MESSAGE)
    me.set(me.project().id, step="build")
    result = me.say("who won the football match yesterday?")
    assert result.tool_calls == []
    assert result.reply.startswith("I don't have a playbook entry that answers that")
    assert "Where is the code?" in result.reply
