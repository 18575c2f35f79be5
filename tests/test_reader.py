"""Reading plain sentences: the act first, then the facts, then each value's sanity check."""

from __future__ import annotations

import pytest

from agent.figures import digits, read_ci, read_cost, read_evals, read_tracing
from agent.reader import command_of, understand

# -- acts ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "command"), [
    ("stauts", "status"), ("Status.", "status"), ("/next", "next"), ("STATUS", "status"),
    ("hlep", "help"), ("portfolo", "portfolio"), ("draft the post-mortem", "draft"),
    ("what have you saved?", "status"),
])
def test_commands_tolerate_typos_case_and_slashes(text: str, command: str) -> None:
    assert command_of(text) == command
    assert understand(text, "problem", "audience").act == "command"


@pytest.mark.parametrize("text", ["Helper", "nurses", "Next Shift Planner", "statuses of beds"])
def test_an_answer_that_looks_a_little_like_a_command_is_not_one(text: str) -> None:
    assert command_of(text) is None


@pytest.mark.parametrize(("text", "act"), [
    ("hi!", "smalltalk"), ("thanks, that helps", "smalltalk"), ("ok cool", "smalltalk"),
    ("not sure", "smalltalk"),
    ("what should the audience be?", "question"), ("How do I pick a good problem", "question"),
    ("undo", "undo"), ("please undo that", "undo"), ("scratch that", "undo"),
    ("can you rename the project to Ward Helper?", "rename"),
    ("change the title to Ward Helper", "rename"),
    ("ok let me start again. My real idea: a tool that plans rotas", "change_of_mind"),
    ("no, I meant ward nurses", "correction"),
    ("what's the weather like tomorrow?", "offtopic"),
    ("tell me a joke", "offtopic"),
])
def test_the_act_is_read_before_anything_else(text: str, act: str) -> None:
    assert understand(text, "problem", "audience", last_field="audience").act == act


def test_a_greeting_with_experience_keeps_the_experience_and_makes_no_title() -> None:
    u = understand("hi! I'm not really sure how this works. I was a nurse for 8 years", None,
                   None)
    assert u.act == "answer"
    assert u.facts == {"personal_context": "I was a nurse for 8 years"}


def test_a_protest_is_never_a_fact() -> None:
    u = understand("wait, that's not my project, I was just saying hello", "problem",
                   "audience", last_field="title")
    assert u.act == "correction" and u.facts == {}
    assert u.clarify and "undo" in u.clarify


def test_a_correction_replaces_the_field_it_corrects() -> None:
    u = understand("no, I meant nurses on night shifts", "problem", "personal_context",
                   last_field="audience")
    assert u.facts == {"audience": "nurses on night shifts"}


def test_a_correction_long_after_the_change_asks_which_field() -> None:
    u = understand("no, I meant nurses on night shifts", "problem", "personal_context")
    assert u.facts == {} and u.clarify and "the audience is" in u.clarify


def test_labelled_answers_take_the_labelled_path() -> None:
    u = understand("Title: Ward Helper Audience: nurses", "problem", "audience")
    assert u.labelled and u.act == "answer"


# -- facts, step by step ---------------------------------------------------------------------

def test_two_facts_in_one_sentence() -> None:
    u = understand("it's for nurses on busy wards, I was one for 8 years", "problem",
                   "audience")
    assert u.facts == {"audience": "nurses on busy wards",
                       "personal_context": "I was one for 8 years"}


def test_already_said_is_not_part_of_the_answer() -> None:
    assert understand("I already said – nurses on busy wards", "problem",
                      "audience").facts == {"audience": "nurses on busy wards"}


def test_title_and_success_from_sentences() -> None:
    u = understand("call it Handover Helper. Success would be flagging 95% of abnormal "
                   "vitals on 50 notes.", "problem", "audience")
    assert u.facts == {"title": "Handover Helper",
                       "success_criteria": "flagging 95% of abnormal vitals on 50 notes"}


def test_a_long_title_is_offered_shorter_not_stored() -> None:
    u = understand("a tool that helps night nurses hand over patients without losing vitals",
                   "problem", "title")
    assert "title" not in u.facts
    assert u.clarify and "call it a tool that helps night" in u.clarify


def test_capabilities_from_plain_words() -> None:
    u = understand("it uses RAG over my notes, calls the pharmacy API and returns JSON",
                   "problem", "audience")
    assert u.facts == {"capabilities": ["retrieval", "tool_use", "structured_output"]}


def test_a_repo_path_inside_a_sentence_and_nothing_swallowed() -> None:
    u = understand("the code is in ~/code/handover and it has one commit", "build", "repo")
    assert u.facts == {"repo": "~/code/handover"}


def test_mvp_enumeration_and_usage_in_one_message() -> None:
    u = understand("It does three things: summarise notes, flag vitals, and print a sheet. "
                   "I ran it on 5 notes from my old ward.", "build", "mvp_scope")
    assert u.facts == {"mvp_scope": ["summarise notes", "flag vitals", "print a sheet"],
                       "usage_note": "I ran it on 5 notes from my old ward"}


def test_a_url_at_deploy() -> None:
    assert understand("it's live at https://handover.fly.dev now", "deploy",
                      "deployment").facts == {"url": "https://handover.fly.dev"}


def test_lessons_in_plain_words() -> None:
    u = understand("the thing that worked best was the tiny scope, what didn't work was my "
                   "first prompt, I chose regex over an LLM because it is deterministic",
                   "postmortem", "postmortem")
    assert u.facts == {"worked": ["the tiny scope"], "didnt_work": ["my first prompt"],
                       "tradeoff": ["I chose regex over an LLM because it is deterministic"]}


def test_step_awareness_keeps_figures_out_of_step_one() -> None:
    u = understand("I was a nurse for 8 years and it costs me 3 dollars a month", "problem",
                   "personal_context")
    assert "cost_tracking" not in u.facts


# -- figures ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("12 cases, 10 of them pass, graded by exact match",
     {"cases": 12, "pass_rate": 0.8333, "grader": "exact match"}),
    ("10 out of 12 passed, so about 83%", {"cases": 12, "pass_rate": 0.83}),
    ("ten of twelve pass", {"cases": 12, "pass_rate": 0.8333}),
    ("83%", {"pass_rate": 0.83}),
    ("pass rate 0.83", {"pass_rate": 0.83}),
    ("a dozen test cases judged by an LLM judge", {"cases": 12, "grader": "an LLM judge"}),
    ("40 examples at 88 percent", {"cases": 40, "pass_rate": 0.88}),
])
def test_eval_figures_in_every_common_form(text: str, expected: dict) -> None:
    assert read_evals(text) == expected


@pytest.mark.parametrize(("text", "amount", "per"), [
    ("half a cent per request", "0.005", "request"),
    ("3 dollars a month", "3", "month"),
    ("about $0.004 a call", "0.004", "request"),
    ("two bucks a day", "2", "day"),
    ("0.4 cents per query", "0.004", "request"),
])
def test_costs_in_words(text: str, amount: str, per: str) -> None:
    details = read_cost(text)
    assert details is not None
    assert (details["cost_usd"], details["per"]) == (amount, per)


def test_a_cost_without_a_unit_or_period_is_not_read() -> None:
    assert read_cost("it is cheap") is None
    assert read_cost("$5") is None


def test_tracing_tool_apart_from_its_link() -> None:
    assert read_tracing("ok I added langfuse, here's a trace (https://cloud.langfuse.com/t/1)"
                        ) == {"tool": "Langfuse", "link": "https://cloud.langfuse.com/t/1"}
    assert read_tracing("we send OpenTelemetry spans to Jaeger")["tool"] == "Jaeger"  # type: ignore[index]
    assert read_tracing("https://smith.langchain.com/o/1")["tool"] == "LangSmith"  # type: ignore[index]
    assert read_tracing("no tool here") is None


def test_ci_provider_and_workflow_path() -> None:
    details = read_ci("the evals run in github actions via .github/workflows/evals.yml")
    assert details is not None
    assert (details["provider"], details["config_path"]) == (
        "GitHub Actions", ".github/workflows/evals.yml")
    assert read_ci("there is a .gitlab-ci.yml")["provider"] == "GitLab CI"  # type: ignore[index]
    assert read_ci("a script I run by hand") is None


def test_number_words() -> None:
    assert digits("ten of twelve, twenty-four cases, a hundred and five") == \
        "10 of 12, 24 cases, a 105"
