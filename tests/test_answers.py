"""Tests for agent.answers: labelled answers, commands and the evidence parsers."""

from __future__ import annotations

import random

import pytest

from agent.answers import (
    AnswerError,
    first_url,
    parse_ci,
    parse_cost,
    parse_evals,
    parse_tracing,
    read_message,
    split_list,
)

# Every label the SPEC lists, with the key it answers and a value.
SPEC_LABELS: list[tuple[str, str, str]] = [
    ("Title:", "title", "Handover Helper"),
    ("Problem:", "problem", "nurses lose abnormal vitals in rushed handovers"),
    ("Audience:", "audience", "ward nurses on night shifts"),
    ("Why me:", "personal_context", "six years of night shifts"),
    ("Success:", "success_criteria", "flags 95% of abnormal vitals in 50 notes"),
    ("Repo:", "repo", "https://github.com/ann/handover"),
    ("MVP:", "mvp_scope", "summarise a note; flag vitals; copy as text"),
    ("Usage:", "usage_note", "ran it on 12 notes, 11 flagged"),
    ("URL:", "url", "https://handover.example.com/app"),
    ("Evals:", "evals", "24 cases, 91% pass, graded by exact match"),
    ("CI:", "ci_gate", "GitHub Actions .github/workflows/evals.yml"),
    ("Tracing:", "observability", "Langfuse https://cloud.langfuse.com/project/p/traces/1"),
    ("Cost:", "cost_tracking", "$0.004 per request"),
    ("Worked:", "worked", "starting from real notes"),
    ("Didn't work:", "didnt_work", "one prompt for two jobs"),
    ("Tradeoff:", "tradeoff", "two calls: more latency, better recall"),
    ("Capabilities:", "capabilities", "structured_output, evals_ci"),
]


def _message(labels: list[tuple[str, str, str]], case: str = "as is") -> str:
    def spell(label: str) -> str:
        return {"upper": label.upper(), "lower": label.lower()}.get(case, label)

    return " ".join(f"{spell(label)} {value}" for label, _, value in labels)


@pytest.mark.parametrize("case", ["as is", "upper", "lower"])
def test_every_spec_label_in_one_message(case: str) -> None:
    reading = read_message(_message(SPEC_LABELS, case))
    assert reading.command is None
    assert reading.answers == {key: value for _, key, value in SPEC_LABELS}
    assert reading.plain == ""


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_labels_in_any_order(seed: int) -> None:
    shuffled = SPEC_LABELS[:]
    random.Random(seed).shuffle(shuffled)
    reading = read_message(_message(shuffled))
    assert reading.answers == {key: value for _, key, value in SPEC_LABELS}


def test_labels_on_separate_lines_and_odd_spacing() -> None:
    text = "title:   A\nWHY   ME : because\n\nsuccess criteria: 3 users;\nProblem:x"
    assert read_message(text).answers == {
        "title": "A", "personal_context": "because", "success_criteria": "3 users",
        "problem": "x"}


def test_text_before_the_first_label_is_kept_as_plain() -> None:
    reading = read_message("Here is my project. Title: A Audience: nurses")
    assert reading.plain == "Here is my project."
    assert reading.answers == {"title": "A", "audience": "nurses"}


def test_a_colon_that_is_not_a_label_is_plain_text() -> None:
    reading = read_message("I have one idea: a triage bot")
    assert reading.answers == {}
    assert reading.plain == "I have one idea: a triage bot"


@pytest.mark.parametrize("text", [
    "see https://example.com/a for the app",
    "my app runs at http://app.example.com:8080/x",
    "https://url.example.com",
])
def test_a_url_scheme_is_not_a_label(text: str) -> None:
    reading = read_message(text)
    assert reading.answers == {}
    assert reading.plain == text


def test_url_values_keep_their_scheme_and_port() -> None:
    reading = read_message("URL: https://a.example.com:8443/x Repo: git@github.com:ann/b.git")
    assert reading.answers == {"url": "https://a.example.com:8443/x",
                               "repo": "git@github.com:ann/b.git"}


def test_post_mortem_runs_to_the_end_of_the_message() -> None:
    text = ("Title: ignored? Post-mortem: ## What worked\nWorked: the eval set. "
            "Didn't work: one prompt. Tradeoff: latency. URL: https://x.example.com")
    reading = read_message(text)
    assert reading.answers["title"] == "ignored?"
    assert reading.answers["postmortem"] == text.split("Post-mortem: ", 1)[1]
    assert set(reading.answers) == {"title", "postmortem"}


@pytest.mark.parametrize("label", ["Post-mortem:", "postmortem:", "POST-MORTEM:"])
def test_post_mortem_label_spellings(label: str) -> None:
    assert read_message(f"{label} Worked: x").answers == {"postmortem": "Worked: x"}


def test_several_lessons_of_one_kind_are_all_kept() -> None:
    reading = read_message("Worked: a Tradeoff: t Worked: b Didn't work: c Did not work: d")
    assert reading.answers == {"worked": "a\nb", "tradeoff": "t", "didnt_work": "c\nd"}


def test_a_repeated_field_label_keeps_the_last_value() -> None:
    assert read_message("Title: first Title: second").answers == {"title": "second"}


@pytest.mark.parametrize(("text", "command"), [
    ("status", "status"), ("Status", "status"), ("  STATUS.  ", "status"),
    ("portfolio", "portfolio"), ("/portfolio", "portfolio"),
    ("next", "next"), ("Next!", "next"),
    ("help", "help"), ("?", "help"),
    ("draft post-mortem", "draft"), ("Draft Postmortem", "draft"),
])
def test_commands(text: str, command: str) -> None:
    reading = read_message(text)
    assert reading.command == command
    assert reading.answers == {}


@pytest.mark.parametrize("text", ["status of my app is fine", "next week", "help me please"])
def test_a_command_word_inside_a_sentence_is_not_a_command(text: str) -> None:
    reading = read_message(text)
    assert reading.command is None
    assert reading.plain == text


def test_split_list() -> None:
    assert split_list("a; b, c; d.") == ["a", "b, c", "d"]
    assert split_list("retrieval, tool_use ,agents") == ["retrieval", "tool_use", "agents"]
    assert split_list(" ; ") == []


# -- evals ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("24 cases, 91% pass, graded by exact match",
     {"cases": 24, "pass_rate": 0.91, "grader": "exact match"}),
    ("1,200 examples, pass rate 0.875, grader: an LLM judge.",
     {"cases": 1200, "pass_rate": 0.875, "grader": "an LLM judge"}),
    ("50 eval cases at 100% judged by a rubric",
     {"cases": 50, "pass_rate": 1.0, "grader": "a rubric"}),
    ("12 questions", {"cases": 12}),
])
def test_parse_evals(text: str, expected: dict) -> None:
    assert parse_evals(text) == expected


@pytest.mark.parametrize("text", ["lots", "91% pass, graded by exact match", ""])
def test_parse_evals_without_a_case_count_shows_the_form(text: str) -> None:
    with pytest.raises(AnswerError, match=r"`Evals: 24 cases, 91% pass, graded by"):
        parse_evals(text)


# -- cost ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "amount", "per"), [
    ("$0.004 per request", "0.004", "request"),
    ("0.01 USD per call", "0.01", "request"),
    ("about $3 a day", "3", "day"),
    ("$40 monthly", "40", "month"),
])
def test_parse_cost(text: str, amount: str, per: str) -> None:
    details = parse_cost(text)
    assert (details["cost_usd"], details["per"], details["note"]) == (amount, per, text)


@pytest.mark.parametrize("text", ["cheap", "$5", "per request", "nothing a day? no"])
def test_parse_cost_malformed_shows_the_form(text: str) -> None:
    with pytest.raises(AnswerError, match=r"`Cost: \$0\.004 per request`"):
        parse_cost(text)


# -- tracing ---------------------------------------------------------------------------------

def test_parse_tracing_tool_and_link() -> None:
    assert parse_tracing("Langfuse https://cloud.langfuse.com/trace/1.") == {
        "tool": "Langfuse", "link": "https://cloud.langfuse.com/trace/1"}
    assert parse_tracing("LangSmith (https://smith.langchain.com/o/x)") == {
        "tool": "LangSmith", "link": "https://smith.langchain.com/o/x"}


def test_parse_tracing_without_a_link_keeps_the_tool() -> None:
    assert parse_tracing("OpenTelemetry to Jaeger") == {
        "tool": "OpenTelemetry to Jaeger", "link": None}


@pytest.mark.parametrize("text", ["https://cloud.langfuse.com/trace/1", "", " - "])
def test_parse_tracing_without_a_tool_shows_the_form(text: str) -> None:
    with pytest.raises(AnswerError, match=r"`Tracing: Langfuse https://"):
        parse_tracing(text)


# -- CI --------------------------------------------------------------------------------------

def test_parse_ci_provider_and_config_path() -> None:
    details = parse_ci("GitHub Actions .github/workflows/evals.yml blocks merges under 90%")
    assert details["provider"] == "GitHub Actions"
    assert details["config_path"] == ".github/workflows/evals.yml"
    assert details["description"].startswith("GitHub Actions")


def test_parse_ci_other_providers() -> None:
    assert parse_ci("gitlab ci with .gitlab-ci.yml")["provider"] == "GitLab CI"
    assert parse_ci("gitlab ci with .gitlab-ci.yml")["config_path"] == ".gitlab-ci.yml"
    assert parse_ci("a Jenkinsfile stage")["config_path"] == "Jenkinsfile"


def test_parse_ci_unknown_provider_keeps_the_description() -> None:
    details = parse_ci("a pre-merge script that runs the evals")
    assert details["provider"] == "a pre-merge script that runs the evals"
    assert "config_path" not in details


def test_first_url() -> None:
    assert first_url("it is at https://x.example.com/a, and fast.") == "https://x.example.com/a"
    assert first_url("no url here") is None


@pytest.mark.parametrize("text", ["Didn’t work: one prompt", "What didn’t work: one prompt"])
def test_a_typographic_apostrophe_still_reads_as_didnt_work(text: str) -> None:
    # Phones and word processors turn ' into ’; the label must still be read, or the
    # lesson is taken as a plain answer to whatever the coach asked last.
    assert read_message(text).answers == {"didnt_work": "one prompt"}
