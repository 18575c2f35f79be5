"""Step-4 claims held against the repository: real git checkouts, real tools, the real gate.

The learner states evidence; the harden gate audits the repository afresh and refuses what
it contradicts, naming what is missing and where it looked; once the repository is fixed,
`advance_step` (the learner's `next`) passes.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from agent.session import ensure_user
from memory.models import Evidence
from memory.store import session_scope
from tests.test_tools import FULL_PROBLEM, GIT_ENV, call, put_at_step, rows
from tools import ToolContext
from tools.projects import project_view
from tools.repo_facts import ci_checks, count_cases, library_for_tool

STATED = {
    "evals": {"cases": 24, "pass_rate": 0.91, "grader": "exact match"},
    "ci_gate": {"provider": "GitHub Actions", "config_path": ".github/workflows/evals.yml"},
    "observability": {"tool": "Langfuse", "link": "https://langfuse.example/t/1"},
    "cost_tracking": {"cost_usd": "0.004", "per": "request"},
}
WORKFLOW = ("on: [pull_request]\njobs:\n  evals:\n    runs-on: ubuntu-latest\n    steps:\n"
            "      - run: python -m pytest && python evals/run.py\n")
GOOD = {
    ".github/workflows/evals.yml": WORKFLOW,
    "evals/cases.jsonl": '{"q": "x"}\n' * 24,
    "app/trace.py": "from langfuse import observe\n",
}


def commit(repo: Path, files: dict[str, str], message: str = "work") -> str:
    for rel, text in files.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)
    env = {**os.environ, **GIT_ENV}
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True, env=env)
    subprocess.run(["git", "commit", "-q", "--allow-empty", "-m", message], cwd=repo,
                   check=True, env=env)
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, check=True, env=env,
                          capture_output=True, text=True).stdout.strip()


def new_repo(path: Path, files: dict[str, str]) -> tuple[Path, str]:
    path.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=path, check=True,
                   env={**os.environ, **GIT_ENV})
    return path, commit(path, {"README.md": "# tool\n", **files}, "start")


@pytest.fixture
def ctx(engine: Engine) -> ToolContext:
    return ToolContext(engine, ensure_user(engine, "ada"), "thread-ada")


def at_harden(ctx: ToolContext, repo: Path, stated: dict[str, dict[str, Any]]) -> int:
    created = call(ctx, "create_project", FULL_PROBLEM)
    pid = created.content["project_id"]
    put_at_step(ctx.engine, pid, "harden", repo=str(repo.resolve()))
    for kind, details in stated.items():
        assert call(ctx, "record_evidence", {"project_id": pid, "kind": kind,
                                             "details": dict(details)}).ok
    return int(pid)


def advance(ctx: ToolContext, pid: int) -> dict[str, Any]:
    return call(ctx, "advance_step", {"project_id": pid}).content


def test_a_contradicted_ci_claim_fails_naming_the_file_and_commit_then_the_fix_passes(
        ctx: ToolContext, tmp_path: Path) -> None:
    files = {k: v for k, v in GOOD.items() if not k.startswith(".github")}
    repo, sha = new_repo(tmp_path / "tool", files)
    pid = at_harden(ctx, repo, STATED)

    refused = advance(ctx, pid)
    assert refused["ok"] is False and refused["step"] == "harden"
    assert (f"the workflow .github/workflows/evals.yml is not in the repository at commit "
            f"{sha[:7]}") in " ".join(refused["missing"])
    assert len(refused["missing"]) == 1  # evals and tracing are shown by the repository

    fixed = commit(repo, {".github/workflows/evals.yml": WORKFLOW}, "add the CI gate")
    passed = advance(ctx, pid)  # the learner's `next`: a fresh audit sees the new commit
    assert passed["ok"] is True and passed["step"] == "postmortem"
    audits = [e for e in rows(ctx.engine, Evidence) if e.kind == "audit"]
    assert [a.details["commit"] for a in audits] == [sha, fixed]
    assert all(a.verified for a in audits)


def test_a_workflow_that_runs_nothing_does_not_count(ctx: ToolContext, tmp_path: Path) -> None:
    repo, sha = new_repo(tmp_path / "tool", {**GOOD, ".github/workflows/evals.yml":
                                             "on: push\njobs:\n  x:\n    steps:\n"
                                             "      - run: echo deploy  # pytest later\n"})
    refused = advance(ctx, at_harden(ctx, repo, STATED))
    [message] = refused["missing"]
    assert message.startswith(f"the CI config .github/workflows/evals.yml at commit {sha[:7]}"
                              " runs no tests or evals (looked for pytest")


def test_ci_without_a_path_needs_some_config_that_runs_checks(
        ctx: ToolContext, tmp_path: Path) -> None:
    files = {k: v for k, v in GOOD.items() if not k.startswith(".github")}
    repo, _ = new_repo(tmp_path / "tool", files)
    stated = {**STATED, "ci_gate": {"provider": "GitLab CI"}}
    refused = advance(ctx, at_harden(ctx, repo, stated))
    assert "no CI configuration in the repository" in refused["missing"][0]
    assert ".gitlab-ci.yml" in refused["missing"][0]  # says where it looked
    commit(repo, {".gitlab-ci.yml": "test:\n  script:\n    - make test\n"})
    assert advance(ctx, at_harden(ctx, repo, stated))["ok"] is True


def test_an_eval_claim_without_eval_files_fails(ctx: ToolContext, tmp_path: Path) -> None:
    files = {k: v for k, v in GOOD.items() if not k.startswith("evals/")}
    repo, sha = new_repo(tmp_path / "tool", files)
    refused = advance(ctx, at_harden(ctx, repo, STATED))
    [message] = refused["missing"]
    assert message.startswith(f"no eval files in the repository {repo.resolve()} at commit "
                              f"{sha[:7]} (looked for evals/")


def test_stated_cases_above_what_the_data_files_hold_fail_with_both_counts(
        ctx: ToolContext, tmp_path: Path) -> None:
    repo, sha = new_repo(tmp_path / "tool", {**GOOD, "evals/cases.jsonl": '{"q": 1}\n' * 3,
                                             "evals/more.csv": "q,a\n1,2\n3,4\n"})
    refused = advance(ctx, at_harden(ctx, repo, STATED))
    [message] = refused["missing"]
    assert message == (f"you stated 24 eval cases; the eval files at commit {sha[:7]} hold 5 "
                       "(evals/cases.jsonl: 3, evals/more.csv: 2)")


def test_tracing_claims_need_tracing_code_of_that_tool_or_opentelemetry(
        ctx: ToolContext, tmp_path: Path) -> None:
    no_tracing = {k: v for k, v in GOOD.items() if not k.startswith("app/")}
    repo, sha = new_repo(tmp_path / "none", no_tracing)
    refused = advance(ctx, at_harden(ctx, repo, STATED))
    assert refused["missing"][0].startswith(
        f"no tracing code in the repository {repo.resolve()} at commit {sha[:7]}")

    other, sha2 = new_repo(tmp_path / "other", {**no_tracing,
                                                "app/t.py": "import langsmith\n"})
    refused = advance(ctx, at_harden(ctx, other, STATED))
    assert refused["missing"] == [
        f"you named Langfuse as the tracing tool; the code at commit {sha2[:7]} imports "
        "langsmith (app/t.py), not langfuse"]

    otel, _ = new_repo(tmp_path / "otel", {**no_tracing,
                                           "app/t.py": "from opentelemetry import trace\n"})
    # Langfuse takes OTLP: OpenTelemetry code supports the claim.
    assert advance(ctx, at_harden(ctx, otel, STATED))["ok"] is True


def test_evidence_carries_verified_and_how(ctx: ToolContext, tmp_path: Path) -> None:
    repo, sha = new_repo(tmp_path / "tool", GOOD)
    pid = at_harden(ctx, repo, STATED)
    assert advance(ctx, pid)["ok"] is True
    with session_scope(ctx.engine) as s:
        from memory.models import Project
        project = s.get(Project, pid)
        assert project is not None
        view = project_view(s, project)
    assert view["evidence"]["audit"]["verified"] is True
    assert view["evidence"]["audit"]["commit"] == sha
    for kind in STATED:
        assert view["evidence"][kind]["verified"] is False


def test_an_unauditable_repository_needs_the_learners_acknowledgement(
        ctx: ToolContext, tmp_path: Path) -> None:
    repo, _ = new_repo(tmp_path / "tool", GOOD)
    pid = at_harden(ctx, repo, STATED)
    with session_scope(ctx.engine) as s:  # what a private remote's failed clone leaves
        s.add(Evidence(project_id=pid, kind="audit", verified=True, ok=False, details={
            "url": "https://git.example/ann/tool.git", "auditable": False, "private": True,
            "reason": "https://git.example/ann/tool.git needs sign-in (HTTP 401/403)"}))
    put_at_step(ctx.engine, pid, "harden", repo="https://git.example/ann/tool.git")
    ctx.clone_timeout = 0.5
    refused = advance(ctx, pid)
    assert refused["ok"] is False
    assert "could not audit the repository" in refused["missing"][0]
    assert "Acknowledge:" in refused["missing"][0]

    # Only the learner's own words count as the acknowledgement.
    forged = call(ctx, "record_evidence", {"project_id": pid, "kind": "other",
                                           "details": {"acknowledged": "rests on my word"}})
    assert not forged.ok and "only the learner" in forged.content["error"]
    ctx.learner_message = "Acknowledge: step 4 rests on my word"
    assert call(ctx, "record_evidence", {"project_id": pid, "kind": "other",
                                         "details": {"acknowledged": "rests on my word"}}).ok
    assert advance(ctx, pid)["ok"] is True


@pytest.mark.parametrize(("text", "found"), [
    ("steps:\n  - run: pytest -q\n", ["pytest"]),
    ("script:\n  - npm test\n", ["npm/yarn/pnpm test"]),
    ("steps:\n  - run: echo hi\n# - run: pytest\n", []),
    ("jobs:\n  test:\n    steps:\n      - run: ls\n", []),
    ("- run: promptfoo eval -c promptfooconfig.yaml\n", ["promptfoo"]),
])
def test_what_a_ci_config_runs(text: str, found: list[str]) -> None:
    assert ci_checks(text) == found


@pytest.mark.parametrize(("name", "text", "count"), [
    ("a.jsonl", '{"a": 1}\n\n{"a": 2}\n', 2),
    ("a.json", '[{"a": 1}, {"a": 2}, {"a": 3}]', 3),
    ("a.json", '{"cases": [1, 2]}', 2),
    ("a.yaml", "- a: 1\n- a: 2\n", 2),
    ("a.yaml", "tests:\n  - x\n", 1),
    ("a.csv", "q,a\n1,2\n3,4\n\n", 2),
    ("a.json", "{not json", None),
    ("a.json", '{"config": 1}', None),
])
def test_eval_case_counts(name: str, text: str, count: int | None) -> None:
    assert count_cases(name, text) == count


@pytest.mark.parametrize(("tool", "library"), [
    ("Langfuse", "langfuse"), ("Arize Phoenix", "phoenix"), ("LangSmith", "langsmith"),
    ("Jaeger", "opentelemetry"), ("Pydantic Logfire", "logfire"), ("my own thing", None),
])
def test_tool_names(tool: str, library: str | None) -> None:
    assert library_for_tool(tool) == library


def test_the_offline_coach_reads_an_acknowledgement() -> None:
    from agent.answers import read_message
    from agent.offline import evidence_calls

    reading = read_message("Acknowledge: step 4 rests on my word")
    assert reading.answers == {"acknowledge": "step 4 rests on my word"}
    assert evidence_calls(reading.answers, 7) == [
        ("record_evidence", {"project_id": 7, "kind": "other",
                             "details": {"acknowledged": "step 4 rests on my word"}})]


def test_a_trace_link_is_fetched_and_verifies_only_when_it_opens(
        ctx: ToolContext, tmp_path: Path) -> None:
    from ipaddress import ip_network

    from agent.demo import local_app
    from tools.evidence_text import sentence

    repo, _ = new_repo(tmp_path / "tool", GOOD)
    pid = at_harden(ctx, repo, {})
    pages = {"/trace/1": (200, {}, b"<html>a trace</html>"),
             "/private": (401, {}, b""),
             "/to-login": (302, {"Location": "/login?next=/t"}, b""),
             "/login": (200, {}, b"<form>sign in</form>")}
    ctx.extra_allowed_networks = [ip_network("127.0.0.1/32")]
    ctx.check_links = True  # what the coach's own sessions do
    with local_app(pages) as url:
        def record(link: str) -> dict[str, Any]:
            result = call(ctx, "record_evidence", {"project_id": pid, "kind": "observability",
                                                   "details": {"tool": "Langfuse",
                                                               "link": link}})
            assert result.ok, result.content
            return result.content

        opened = record(f"{url}trace/1")
        assert opened["verified"] is True and opened["details"]["link_check"]["status_code"] == 200
        for path in ("private", "to-login"):
            closed = record(f"{url}{path}")
            assert closed["verified"] is False
            assert "behind a sign-in" in closed["note"]
            assert "coach projects ingest-token" in closed["note"]
    example = record("https://langfuse.example.com/t/1")  # no fetch: a reserved name
    assert example["verified"] is False
    assert example["details"]["link_check"]["reason"] == \
        "langfuse.example.com is a reserved example domain"

    shown = view_of(ctx, pid)["evidence"]["observability"]
    assert shown["strength"] == "stated"
    opened_record = {**opened["details"], "verified": True}
    assert sentence("observability", opened_record).startswith(
        f"Tracing: Langfuse {url}trace/1 — verified: link fetched ")


def test_a_sentence_is_not_a_tool_name(ctx: ToolContext, tmp_path: Path) -> None:
    repo, _ = new_repo(tmp_path / "tool", GOOD)
    pid = at_harden(ctx, repo, {})
    refused = call(ctx, "record_evidence", {"project_id": pid, "kind": "observability",
                                            "details": {"tool": "we look at the logs when "
                                                                "something breaks",
                                                        "link": "https://x.example/"}})
    assert not refused.ok
    assert "names the tracing tool" in " ".join(refused.content["problems"])


def view_of(ctx: ToolContext, pid: int) -> dict[str, Any]:
    from memory.models import Project

    with session_scope(ctx.engine) as s:
        project = s.get(Project, pid)
        assert project is not None
        return project_view(s, project)


def test_a_workflow_named_by_its_file_name_alone_counts(ctx: ToolContext, tmp_path: Path) -> None:
    repo, _ = new_repo(tmp_path / "tool", GOOD)
    stated = {**STATED, "ci_gate": {"provider": "GitHub Actions", "config_path": "evals.yml"}}
    assert advance(ctx, at_harden(ctx, repo, stated))["ok"] is True
