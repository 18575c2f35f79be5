"""The six gates, each as a pure function of a ProjectRecord: every requirement refused alone."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from memory.models import Evidence, PostmortemVersion, Project
from tools.gates import (
    CAPABILITIES,
    DONE,
    STEPS,
    ProjectRecord,
    check_gate,
    difficulty,
    is_local_repo,
    next_step,
    word_count,
)

TWENTY_WORDS = ("Junior engineers on my team lose hours searching scattered "
                "runbooks and chat threads before they can fix a failing deploy.")

GIT_ENV = {
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_SYSTEM": "/dev/null",
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                   env={**os.environ, **GIT_ENV})


def make_repo(path: Path, commits: int) -> Path:
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    for i in range(commits):
        (path / f"file{i}.txt").write_text(f"{i}\n")
        git(path, "add", ".")
        git(path, "commit", "-q", "-m", f"commit {i}")
    return path


def project(step: str = "problem", **overrides: Any) -> Project:
    fields: dict[str, Any] = {
        "id": 1, "user_id": 1, "title": "Runbook search", "problem": TWENTY_WORDS,
        "audience": "junior SREs", "personal_context": "I was the on-call junior for a year",
        "success_criteria": "answers 8 of 10 real on-call questions", "step": step,
        "repo": "https://github.com/example/runbook-search", "mvp_scope": ["search", "cite"],
        "usage_note": "answered the disk-full question in 4 seconds",
    }
    fields.update(overrides)
    return Project(**fields)


def evidence(kind: str, details: dict[str, Any], ok: bool = True, minutes: int = 0,
             id: int | None = None) -> Evidence:
    return Evidence(id=id, project_id=1, kind=kind, details=details, ok=ok,
                    checked_at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=minutes))


def fields_missing(rec: ProjectRecord) -> list[str]:
    return [m.field for m in check_gate(rec).missing]


# ---------------------------------------------------------------- problem


def test_problem_gate_passes_with_every_requirement() -> None:
    result = check_gate(ProjectRecord(project("problem")))
    assert result.step == "problem"
    assert result.passed and result.missing == []


def test_problem_of_19_words_is_refused_and_20_passes() -> None:
    nineteen = TWENTY_WORDS.rsplit(" ", 1)[0]
    assert (word_count(nineteen), word_count(TWENTY_WORDS)) == (19, 20)
    result = check_gate(ProjectRecord(project("problem", problem=nineteen)))
    assert [m.field for m in result.missing] == ["problem"]
    assert "19" in result.missing[0].message
    assert check_gate(ProjectRecord(project("problem", problem=TWENTY_WORDS))).passed


@pytest.mark.parametrize("name", ["title", "audience", "personal_context", "success_criteria"])
def test_problem_requirement_missing_alone(name: str) -> None:
    assert fields_missing(ProjectRecord(project("problem", **{name: "  "}))) == [name]


def test_success_criterion_without_a_number_is_refused() -> None:
    rec = ProjectRecord(project("problem", success_criteria="people like it a lot"))
    result = check_gate(rec)
    assert [m.field for m in result.missing] == ["success_criteria"]
    assert "number" in result.missing[0].message


def test_empty_problem_lists_everything_at_once() -> None:
    rec = ProjectRecord(project("problem", title="", problem="", audience="",
                                personal_context="", success_criteria=""))
    assert fields_missing(rec) == ["title", "problem", "audience", "personal_context",
                                   "success_criteria"]


# ---------------------------------------------------------------- build


def test_build_gate_passes_with_https_repo() -> None:
    rec = ProjectRecord(project("build", repo="https://github.com/example/tool"))
    assert check_gate(rec).passed


def test_build_gate_passes_with_local_repo_of_one_commit(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "one", commits=1)
    assert check_gate(ProjectRecord(project("build", repo=str(repo)))).passed


def test_build_refuses_local_dir_that_is_not_git(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    result = check_gate(ProjectRecord(project("build", repo=str(plain))))
    assert [m.field for m in result.missing] == ["repo"]
    assert "not a git checkout" in result.missing[0].message


def test_build_refuses_git_repo_without_commits(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "empty", commits=0)
    result = check_gate(ProjectRecord(project("build", repo=str(repo))))
    assert [m.field for m in result.missing] == ["repo"]
    assert "at least one commit" in result.missing[0].message


@pytest.mark.parametrize("repo", ["", "file:///srv/repo", "https://"])
def test_build_refuses_missing_or_hostless_repo(repo: str) -> None:
    assert fields_missing(ProjectRecord(project("build", repo=repo))) == ["repo"]


@pytest.mark.parametrize("scope", [[], ["a", "b", "c", "d"]])
def test_build_refuses_mvp_of_0_or_4_features(scope: list[str]) -> None:
    result = check_gate(ProjectRecord(project("build", mvp_scope=scope)))
    assert [m.field for m in result.missing] == ["mvp_scope"]


@pytest.mark.parametrize("scope", [["a"], ["a", "b", "c"]])
def test_build_accepts_mvp_of_1_to_3_features(scope: list[str]) -> None:
    assert check_gate(ProjectRecord(project("build", mvp_scope=scope))).passed


@pytest.mark.parametrize("repo", ["git@github.com:ada/runbook-search.git",
                                  "  git@git.example.com:team/tool  ",
                                  "ssh://git@github.com/ada/tool.git", "git://example.com/tool"])
def test_build_gate_refuses_a_remote_it_cannot_clone_and_says_why(repo: str) -> None:
    # An SSH or git:// remote is a remote, not a local path (no git is run against it), and
    # the coach audits remotes only over http(s): the gate asks for the https:// URL.
    assert is_local_repo(repo) is False
    result = check_gate(ProjectRecord(project("build", repo=repo)))
    assert not result.passed and [m.field for m in result.missing] == ["repo"]
    assert repo.strip() in result.missing[0].message
    assert "https://" in result.missing[0].message


@pytest.mark.parametrize("repo", ["git@github.com", "ssh://", "ftp://example.com/tool"])
def test_build_refuses_remotes_without_a_path_or_of_another_scheme(repo: str,
                                                                    tmp_path: Path) -> None:
    result = check_gate(ProjectRecord(project("build", repo=repo)))
    assert [m.field for m in result.missing] == ["repo"]


def test_build_refuses_missing_usage_note() -> None:
    assert fields_missing(ProjectRecord(project("build", usage_note=" "))) == ["usage_note"]


# ---------------------------------------------------------------- deploy


def test_deploy_without_a_check_is_refused() -> None:
    assert fields_missing(ProjectRecord(project("deploy"))) == ["deployment"]


def test_deploy_with_failed_check_is_refused_with_its_reason() -> None:
    failed = evidence("deployment", {"url": "https://x.example", "reason": "HTTP 503"}, ok=False)
    result = check_gate(ProjectRecord(project("deploy"), [failed]))
    assert [m.field for m in result.missing] == ["deployment"]
    assert "HTTP 503" in result.missing[0].message


def test_deploy_ok_check_passes_and_carries_streamlit_warning() -> None:
    ok = evidence("deployment", {"url": "https://x.example", "reason": "HTTP 200",
                                 "streamlit": True, "warnings": ["looks like Streamlit"]})
    result = check_gate(ProjectRecord(project("deploy"), [ok]))
    assert result.passed
    assert result.warnings == ["looks like Streamlit"]
    assert result.as_dict()["warnings"] == ["looks like Streamlit"]


def test_deploy_uses_the_latest_check() -> None:
    old_ok = evidence("deployment", {"url": "u", "reason": "HTTP 200"}, ok=True, minutes=0)
    new_bad = evidence("deployment", {"url": "u", "reason": "HTTP 500"}, ok=False, minutes=5)
    assert fields_missing(ProjectRecord(project("deploy"), [old_ok, new_bad])) == ["deployment"]
    assert check_gate(ProjectRecord(project("deploy"), [new_bad, evidence(
        "deployment", {"url": "u"}, ok=True, minutes=10)])).passed


# ---------------------------------------------------------------- harden

GOOD_HARDEN = {
    "evals": {"cases": 10, "pass_rate": 0.9, "grader": "exact match"},
    "ci_gate": {"provider": "github actions", "config_path": ".github/workflows/ci.yml"},
    "observability": {"tool": "langfuse", "link": "https://cloud.langfuse.com/trace/1"},
    "cost_tracking": {"cost_usd": "0.004", "per": "request"},
}


def harden(**replace: dict[str, Any] | None) -> ProjectRecord:
    kinds = {**GOOD_HARDEN, **replace}
    return ProjectRecord(project("harden"),
                         [evidence(k, dict(d)) for k, d in kinds.items() if d is not None])


def test_harden_passes_with_all_evidence() -> None:
    assert check_gate(harden()).passed


def test_harden_refuses_9_eval_cases_and_accepts_10() -> None:
    nine = harden(evals={"cases": 9, "pass_rate": 0.9, "grader": "judge"})
    result = check_gate(nine)
    assert [m.field for m in result.missing] == ["evals"]
    assert "10" in result.missing[0].message
    assert check_gate(harden(evals={"cases": 10, "pass_rate": 0.9, "grader": "judge"})).passed


@pytest.mark.parametrize("details", [
    {"cases": 12, "grader": "judge"},            # no pass rate
    {"cases": 12, "pass_rate": 0.8},             # no grader
    {"cases": 12, "pass_rate": 0.8, "grader": ""},
    {"cases": "lots", "pass_rate": 0.8, "grader": "judge"},
])
def test_harden_refuses_incomplete_evals(details: dict[str, Any]) -> None:
    assert fields_missing(harden(evals=details)) == ["evals"]


def test_harden_without_evals_at_all() -> None:
    assert fields_missing(harden(evals=None)) == ["evals"]


@pytest.mark.parametrize("details", [None, {}, {"provider": ""}])
def test_harden_refuses_missing_ci_gate(details: dict[str, Any] | None) -> None:
    assert fields_missing(harden(ci_gate=details)) == ["ci_gate"]


def test_harden_accepts_ci_gate_by_config_path_alone() -> None:
    assert check_gate(harden(ci_gate={"config_path": ".gitlab-ci.yml"})).passed


@pytest.mark.parametrize("details", [
    None,
    {"link": "https://cloud.langfuse.com/trace/1"},          # no tool
    {"tool": "langfuse"},                                    # no link
    {"tool": "langfuse", "link": "cloud.langfuse.com/t/1"},  # not an http link
    {"tool": "langfuse", "link": "ftp://host/trace"},
])
def test_harden_refuses_observability_without_tool_or_http_link(
        details: dict[str, Any] | None) -> None:
    assert fields_missing(harden(observability=details)) == ["observability"]


@pytest.mark.parametrize("details", [None, {"per": "request"}])
def test_harden_refuses_missing_cost(details: dict[str, Any] | None) -> None:
    assert fields_missing(harden(cost_tracking=details)) == ["cost_tracking"]


def test_harden_with_nothing_lists_all_four_areas() -> None:
    rec = ProjectRecord(project("harden"))
    assert fields_missing(rec) == ["evals", "ci_gate", "observability", "cost_tracking"]


# ---------------------------------------------------------------- postmortem


def version(n: int, failed: list[str], source: str = "submission") -> PostmortemVersion:
    return PostmortemVersion(project_id=1, version=n, source=source, text="t", words=1,
                             report={"failed": failed, "passed": []})


def test_postmortem_without_submission_is_refused() -> None:
    assert fields_missing(ProjectRecord(project("postmortem"))) == ["postmortem"]


def test_postmortem_draft_does_not_count_as_submission() -> None:
    rec = ProjectRecord(project("postmortem"), postmortems=[version(1, [], source="draft")])
    assert fields_missing(rec) == ["postmortem"]


def test_postmortem_failed_checks_of_latest_submission_become_requirements() -> None:
    failed = ["a length of 1200–2000 words (it has 300)", "sections on tradeoffs"]
    rec = ProjectRecord(project("postmortem"), postmortems=[version(1, [], "submission"),
                                                            version(2, failed)])
    result = check_gate(rec)
    assert [m.field for m in result.missing] == ["postmortem", "postmortem"]
    assert [m.message for m in result.missing] == failed


def test_postmortem_passes_when_latest_submission_passed() -> None:
    rec = ProjectRecord(project("postmortem"),
                        postmortems=[version(1, ["sections on tradeoffs"]), version(2, [])])
    assert check_gate(rec).passed


# ---------------------------------------------------------------- repeat


def successor(diff: int) -> Project:
    return Project(id=2, user_id=1, title="next", difficulty=diff, previous_project_id=1)


def test_repeat_without_successor_is_refused() -> None:
    rec = ProjectRecord(project("repeat", difficulty=2))
    assert fields_missing(rec) == ["next_project"]


def test_repeat_with_equal_difficulty_successor_is_refused() -> None:
    rec = ProjectRecord(project("repeat", difficulty=2), successors=[successor(2)])
    assert fields_missing(rec) == ["next_project"]


def test_repeat_with_harder_successor_passes() -> None:
    rec = ProjectRecord(project("repeat", difficulty=2), successors=[successor(3)])
    assert check_gate(rec).passed


# ---------------------------------------------------------------- steps and difficulty


def test_difficulty_counts_distinct_known_capabilities_only() -> None:
    assert difficulty([]) == 0
    assert difficulty(["retrieval", "retrieval", "agents"]) == 2
    assert difficulty(["retrieval", "blockchain", "vibes"]) == 1
    assert difficulty(list(CAPABILITIES)) == 11


def test_steps_in_order_and_done_after_repeat() -> None:
    assert STEPS == ("problem", "build", "deploy", "harden", "postmortem", "repeat")
    assert [next_step(s) for s in STEPS] == [*STEPS[1:], DONE]


def test_done_project_gate_passes() -> None:
    result = check_gate(ProjectRecord(project(DONE, title="")))
    assert result.passed and result.step == DONE


# ---------------------------------------------------------------- post-mortem length edges


def words(n: int) -> str:
    body = " ".join(["word"] * (n - 5))  # plus five words of section names
    return f"What worked: {body}. What didn't. Tradeoffs."


@pytest.mark.parametrize(("n", "ok"), [(1199, False), (1200, True), (2000, True),
                                       (2001, False)])
def test_postmortem_length_is_1200_to_2000_words_inclusive(n: int, ok: bool) -> None:
    from tools.postmortem import postmortem_report

    text = words(n)
    assert word_count(text) == n
    report = postmortem_report(text, {})
    length_ok = any(p.startswith("length:") for p in report["passed"])
    assert length_ok is ok, report

