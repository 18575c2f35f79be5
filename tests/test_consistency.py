"""Facts stay consistent after a gate passed: weakening edits are refused or marked."""

from __future__ import annotations

from sqlalchemy import Engine

from agent.session import ensure_user
from memory.models import Evidence
from tests.test_tools import FULL_PROBLEM, PROBLEM, call, get_project, put_at_step, rows
from tools import ToolContext


def at_step(engine: Engine, step: str) -> tuple[ToolContext, int]:
    ctx = ToolContext(engine, ensure_user(engine, "ada"), "t")
    pid = call(ctx, "create_project", FULL_PROBLEM).content["project_id"]
    put_at_step(engine, pid, step, mvp_scope=["search"], usage_note="ran it on 3 pages")
    return ctx, pid


def test_a_one_word_problem_after_the_problem_gate_passed_is_refused(engine: Engine) -> None:
    ctx, pid = at_step(engine, "harden")
    refused = call(ctx, "update_project", {"project_id": pid, "problem": "hijack"})
    assert not refused.ok
    assert refused.content["error"].startswith(
        "not changed: the problem gate this project passed needs a problem statement of at "
        "least 20 words (it has 1)")
    assert get_project(engine, pid).problem == PROBLEM  # nothing changed
    assert [e for e in rows(engine, Evidence) if e.kind == "recheck"] == []


def test_edits_that_still_pass_and_fields_no_passed_gate_checked_go_through(
        engine: Engine) -> None:
    ctx, pid = at_step(engine, "build")
    longer = PROBLEM + " It costs the team about six hours a week."
    assert call(ctx, "update_project", {"project_id": pid, "problem": longer}).ok
    # The build gate has not passed yet: its fields are free to change.
    assert call(ctx, "update_project", {"project_id": pid, "usage_note": "x"}).ok
    assert get_project(engine, pid).problem == longer


def test_an_insisted_weakening_is_recorded_and_blocks_until_fixed(engine: Engine) -> None:
    ctx, pid = at_step(engine, "deploy")
    forced = call(ctx, "update_project", {"project_id": pid, "success_criteria": "it's good",
                                          "insist": True})
    assert forced.ok
    assert get_project(engine, pid).success_criteria == "it's good"
    [mark] = [e for e in rows(engine, Evidence) if e.kind == "recheck"]
    assert mark.ok is False and mark.details["steps"] == ["problem"]
    gate = forced.content["project"]["gate"]
    assert any(m["field"] == "recheck" and "problem: a success criterion with a number"
               in m["message"] for m in gate["missing"])

    fixed = call(ctx, "update_project", {"project_id": pid,
                                         "success_criteria": "answers 9 of 10 questions"})
    assert fixed.ok
    assert not any(m["field"] == "recheck" for m in fixed.content["project"]["gate"]["missing"])
    marks = [e for e in rows(engine, Evidence) if e.kind == "recheck"]
    assert [m.ok for m in marks] == [False, True]
