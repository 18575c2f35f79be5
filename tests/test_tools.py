"""Every tool in `tools.TOOLS`: what a valid call stores, and bad input answered, never raised."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func
from sqlmodel import select

from agent.demo import local_app
from memory.models import (
    Evidence,
    Lesson,
    PostmortemVersion,
    Project,
    ProjectUsage,
    StepTransition,
)
from memory.store import session_scope
from memory.users import ensure_user
from tools import TOOLS, ToolContext, ToolResult
from tools.gates import word_count

PROBLEM = ("Junior engineers on my team lose hours searching scattered runbooks and chat "
           "threads before they can fix a failing deploy, and they page seniors at night.")
FULL_PROBLEM = {
    "title": "Runbook search",
    "problem": PROBLEM,
    "audience": "junior SREs",
    "personal_context": "I was the on-call junior for a year",
    "success_criteria": "answers 8 of 10 real on-call questions",
    "capabilities": ["retrieval"],
}
GIT_ENV = {
    "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_SYSTEM": "/dev/null",
    "GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "t@example.com",
}

# SPEC's tool table: contract argument names.
CONTRACT_ARGS: dict[str, set[str]] = {
    "create_project": {"title", "problem", "audience", "personal_context", "success_criteria",
                       "capabilities"},
    "update_project": {"project_id", "title", "problem", "audience", "personal_context",
                       "success_criteria", "repo", "mvp_scope", "usage_note", "capabilities"},
    "check_deployment": {"project_id", "url"},
    "record_evidence": {"project_id", "kind", "details"},
    "record_lesson": {"project_id", "kind", "text"},
    "audit_repository": {"project_id", "path"},
    "record_project_usage": {"project_id", "model", "input_tokens", "output_tokens",
                             "cache_read_input_tokens", "cache_creation_input_tokens",
                             "requests", "period"},
    "submit_postmortem": {"project_id", "text"},
    "draft_postmortem": {"project_id"},
    "advance_step": {"project_id"},
    "start_next_project": {"from_project_id", "title", "problem", "audience",
                           "personal_context", "success_criteria", "capabilities"},
    "get_portfolio": set(),
    "search_playbook": {"query"},
}


# ---------------------------------------------------------------- helpers and fixtures


@pytest.fixture
def ctx(engine: Engine) -> ToolContext:
    return ToolContext(engine, ensure_user(engine, "ada"), "thread-ada")


@pytest.fixture
def other(engine: Engine) -> ToolContext:
    return ToolContext(engine, ensure_user(engine, "bob"), "thread-bob")


def call(ctx: ToolContext, name: str, raw: Any) -> ToolResult:
    result = TOOLS[name](ctx, raw)
    assert isinstance(result, ToolResult)
    return result


def new_project(ctx: ToolContext, **fields: Any) -> int:
    result = call(ctx, "create_project", {**FULL_PROBLEM, **fields})
    assert result.ok, result.content
    pid = result.content["project_id"]
    assert isinstance(pid, int)
    return pid


def get_project(engine: Engine, pid: int) -> Project:
    with session_scope(engine) as s:
        project = s.get(Project, pid)
        assert project is not None
        return project


def put_at_step(engine: Engine, pid: int, step: str, **fields: Any) -> None:
    """Test setup only: place a project at a step without walking the gates."""
    with session_scope(engine) as s:
        project = s.get(Project, pid)
        assert project is not None
        project.step = step
        for name, value in fields.items():
            setattr(project, name, value)
        s.add(project)


def rows(engine: Engine, model: Any) -> list[Any]:
    with session_scope(engine) as s:
        return list(s.exec(select(model)).all())


def counts(engine: Engine) -> dict[str, int]:
    with session_scope(engine) as s:
        return {m.__name__: s.exec(select(func.count()).select_from(m)).one()
                for m in (Project, Evidence, Lesson, PostmortemVersion, ProjectUsage,
                          StepTransition)}


def make_repo(path: Path, commits: int = 1) -> Path:
    path.mkdir()
    env = {**os.environ, **GIT_ENV}
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=path, check=True, env=env)
    for i in range(commits):
        (path / f"f{i}.py").write_text(f"x = {i}\n")
        subprocess.run(["git", "add", "."], cwd=path, check=True, env=env)
        subprocess.run(["git", "commit", "-q", "-m", f"c{i}"], cwd=path, check=True, env=env)
    return path


HARDENED_FILES = {
    ".github/workflows/ci.yml": "on: push\njobs:\n  t:\n    steps:\n      - run: pytest\n",
    "evals/cases.jsonl": '{"q": "a"}\n' * 24,
    "app/tracing.py": "from openinference.instrumentation import using_session\n",
}


def harden_repo(path: Path) -> Path:
    """A checkout that shows what step 4 claims: a CI config running tests, 24 eval cases,
    tracing code (the harden gate holds stated evidence against the repository)."""
    repo = make_repo(path)
    for rel, text in HARDENED_FILES.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)
    env = {**os.environ, **GIT_ENV}
    subprocess.run(["git", "add", "."], cwd=repo, check=True, env=env)
    subprocess.run(["git", "commit", "-q", "-m", "harden"], cwd=repo, check=True, env=env)
    return repo


def postmortem_text(words_per_section: int = 450) -> str:
    body = " ".join(["evidence"] * words_per_section)
    return (f"## What worked\n{body}\n\n## What didn't work\n{body}\n\n"
            f"## Tradeoffs\n{body}\n")


@pytest.fixture
def local_site() -> Iterator[str]:
    with local_app({"/": (200, {}, b'<html><body>runbook search</body></html>')}) as url:
        yield url


# ---------------------------------------------------------------- schemas


@pytest.mark.parametrize("name", sorted(TOOLS))
def test_schema_is_a_messages_api_tool_definition(name: str) -> None:
    schema = TOOLS[name].schema()
    assert set(schema) == {"name", "description", "input_schema"}
    assert schema["name"] == name
    assert re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", schema["name"])
    assert isinstance(schema["description"], str) and schema["description"].strip()
    input_schema = schema["input_schema"]
    assert input_schema["type"] == "object"
    assert CONTRACT_ARGS[name] <= set(input_schema.get("properties", {}))
    assert set(input_schema.get("required", [])) <= CONTRACT_ARGS[name]


def test_every_contract_tool_exists() -> None:
    assert set(CONTRACT_ARGS) <= set(TOOLS)


# ---------------------------------------------------------------- bad input, for every tool

MINIMAL_VALID: dict[str, dict[str, Any]] = {
    "create_project": {"title": "t"},
    "update_project": {"project_id": 1, "title": "t"},
    "check_deployment": {"project_id": 1, "url": "http://127.0.0.1/"},
    "record_evidence": {"project_id": 1, "kind": "other", "details": {}},
    "record_lesson": {"project_id": 1, "kind": "worked", "text": "caching"},
    "audit_repository": {"project_id": 1, "path": "/nonexistent"},
    "record_project_usage": {"project_id": 1, "model": "m", "input_tokens": 1,
                             "output_tokens": 1},
    "submit_postmortem": {"project_id": 1, "text": "short"},
    "draft_postmortem": {"project_id": 1},
    "advance_step": {"project_id": 1},
    "start_next_project": {"from_project_id": 1, "title": "t", "capabilities": ["agents"]},
    "get_portfolio": {},
    "search_playbook": {"query": "evals"},
}


def test_minimal_valid_covers_every_tool() -> None:
    assert set(MINIMAL_VALID) == set(TOOLS)


@pytest.mark.parametrize("raw", [None, [], "project_id=1", 42])
@pytest.mark.parametrize("name", sorted(TOOLS))
def test_non_dict_input_is_an_error_result(ctx: ToolContext, name: str, raw: Any) -> None:
    result = call(ctx, name, raw)
    assert not result.ok
    assert name in result.content["error"] and "object" in result.content["error"]


@pytest.mark.parametrize("name", sorted(TOOLS))
def test_extra_field_is_refused_and_names_it(ctx: ToolContext, name: str) -> None:
    new_project(ctx)
    result = call(ctx, name, {**MINIMAL_VALID[name], "step": "done"})
    assert not result.ok
    assert result.content["error"] == f"invalid arguments for {name}"
    assert any(p.startswith("step:") for p in result.content["problems"])
    assert get_project(ctx.engine, 1).step == "problem"


@pytest.mark.parametrize("name", sorted(n for n in TOOLS if n != "get_portfolio"))
def test_each_missing_required_field_is_named(ctx: ToolContext, name: str) -> None:
    required = TOOLS[name].schema()["input_schema"]["required"]
    assert required
    for field in required:
        raw = {k: v for k, v in MINIMAL_VALID[name].items() if k != field}
        result = call(ctx, name, raw)
        assert not result.ok
        assert any(p.startswith(f"{field}:") and "required" in p.lower()
                   for p in result.content["problems"]), result.content


@pytest.mark.parametrize("name", sorted(n for n in TOOLS if n != "get_portfolio"))
def test_wrong_types_are_refused(ctx: ToolContext, name: str) -> None:
    key = "from_project_id" if name == "start_next_project" else (
        "title" if name == "create_project" else
        "limit" if name == "search_playbook" else "project_id")
    wrong = (5, 1.5, [1], {"id": 1}) if key == "title" else ("abc", 1.5, [1], {"id": 1})
    for bad in wrong:
        result = call(ctx, name, {**MINIMAL_VALID[name], key: bad})
        assert not result.ok, (bad, result.content)
        assert any(p.startswith(f"{key}:") for p in result.content["problems"])


# ---------------------------------------------------------------- create / update


def test_create_project_stores_the_facts(ctx: ToolContext) -> None:
    result = call(ctx, "create_project", {**FULL_PROBLEM,
                                          "capabilities": ["Retrieval", "tool-use", "retrieval"]})
    assert result.ok
    assert result.content["step"] == "problem"
    assert result.content["gate"]["passed"] is True
    project = get_project(ctx.engine, result.content["project_id"])
    assert project.user_id == ctx.user_id
    assert (project.title, project.problem, project.audience) == (
        "Runbook search", PROBLEM, "junior SREs")
    assert project.capabilities == ["retrieval", "tool_use"]
    assert project.difficulty == 2
    assert project.step == "problem"


def test_create_project_with_title_only_reports_the_gaps(ctx: ToolContext) -> None:
    result = call(ctx, "create_project", {"title": "Idea"})
    assert result.ok
    missing = {m["field"] for m in result.content["gate"]["missing"]}
    assert missing == {"problem", "audience", "personal_context", "success_criteria"}


@pytest.mark.parametrize("raw", [
    {"title": ""},
    {"title": 5},
    {"problem": "no title given"},
    {"title": "t", "capabilities": ["retrieval", "telepathy"]},
    {"title": "t", "capabilities": "retrieval"},
])
def test_create_project_refuses_bad_input(ctx: ToolContext, raw: dict[str, Any]) -> None:
    result = call(ctx, "create_project", raw)
    assert not result.ok
    assert result.content["problems"]
    assert rows(ctx.engine, Project) == []


def test_unknown_capability_error_lists_the_vocabulary(ctx: ToolContext) -> None:
    result = call(ctx, "create_project", {"title": "t", "capabilities": ["telepathy"]})
    text = " ".join(result.content["problems"])
    assert "telepathy" in text and "retrieval" in text and "multimodal" in text


def test_update_project_stores_build_facts(ctx: ToolContext, tmp_path: Path) -> None:
    pid = new_project(ctx)
    repo = make_repo(tmp_path / "repo")
    result = call(ctx, "update_project", {
        "project_id": pid, "repo": str(repo), "mvp_scope": [" search ", "cite", ""],
        "usage_note": "found the runbook in 4 s", "capabilities": ["retrieval", "agents"]})
    assert result.ok, result.content
    assert set(result.content["updated"]) == {"repo", "mvp_scope", "usage_note", "capabilities"}
    project = get_project(ctx.engine, pid)
    assert project.repo == str(repo)
    assert project.mvp_scope == ["search", "cite"]
    assert project.usage_note == "found the runbook in 4 s"
    assert project.difficulty == 2


@pytest.mark.parametrize("raw", [
    {"mvp_scope": ["a", "b", "c", "d"]},
    {"mvp_scope": ["  ", ""]},
    {"repo": "file:///srv/x"},
    {"capabilities": ["retrieval", "mind_reading"]},
    {},  # nothing to update
])
def test_update_project_refuses_bad_input_and_changes_nothing(
        ctx: ToolContext, raw: dict[str, Any]) -> None:
    pid = new_project(ctx)
    before = get_project(ctx.engine, pid)
    result = call(ctx, "update_project", {"project_id": pid, **raw})
    assert not result.ok
    assert isinstance(result.content["error"], str) and result.content["error"]
    after = get_project(ctx.engine, pid)
    assert (after.mvp_scope, after.repo, after.capabilities, after.updated_at) == (
        before.mvp_scope, before.repo, before.capabilities, before.updated_at)


def test_update_project_refuses_local_dir_that_is_not_git(ctx: ToolContext,
                                                          tmp_path: Path) -> None:
    pid = new_project(ctx)
    result = call(ctx, "update_project", {"project_id": pid, "repo": str(tmp_path)})
    assert not result.ok
    assert "not a git checkout" in result.content["error"]


# ---------------------------------------------------------------- another learner's project

FOREIGN_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("update_project", {"title": "hijacked"}),
    ("check_deployment", {"url": "http://127.0.0.1/"}),
    ("record_evidence", {"kind": "other", "details": {"x": 1}}),
    ("record_lesson", {"kind": "worked", "text": "nothing"}),
    ("audit_repository", {"path": "."}),
    ("record_project_usage", {"model": "claude-sonnet-5-5", "input_tokens": 1,
                              "output_tokens": 1}),
    ("submit_postmortem", {"text": "mine now"}),
    ("draft_postmortem", {}),
    ("advance_step", {}),
]


@pytest.mark.parametrize(("name", "args"), FOREIGN_CALLS, ids=[n for n, _ in FOREIGN_CALLS])
def test_another_users_project_looks_missing(ctx: ToolContext, other: ToolContext,
                                             name: str, args: dict[str, Any]) -> None:
    pid = new_project(ctx)
    before = counts(ctx.engine)
    result = call(other, name, {"project_id": pid, **args})
    assert not result.ok
    assert result.content["error"] == f"no project {pid} in your portfolio"
    assert counts(ctx.engine) == before
    project = get_project(ctx.engine, pid)
    assert (project.title, project.step) == ("Runbook search", "problem")


def test_another_users_project_cannot_seed_a_next_project(ctx: ToolContext,
                                                          other: ToolContext) -> None:
    pid = new_project(ctx)
    put_at_step(ctx.engine, pid, "repeat")
    before = counts(ctx.engine)
    result = call(other, "start_next_project", {
        "from_project_id": pid, "title": "t", "capabilities": ["agents", "retrieval"]})
    assert result.content == {"error": f"no project {pid} in your portfolio"}
    assert counts(ctx.engine) == before


def test_missing_project_id_answers_no_project(ctx: ToolContext) -> None:
    result = call(ctx, "advance_step", {"project_id": 999})
    assert result.content == {"error": "no project 999 in your portfolio"}


def test_get_portfolio_shows_only_own_projects(ctx: ToolContext, other: ToolContext) -> None:
    mine = new_project(ctx)
    new_project(other, title="Bob's")
    result = call(ctx, "get_portfolio", {})
    assert result.ok
    assert [p["id"] for p in result.content["projects"]] == [mine]
    assert result.content["projects"][0]["difficulty"] == 1
    assert (result.content["done"], result.content["readiness"]) == (0, "building")


def test_portfolio_readiness_counts_done_projects(ctx: ToolContext) -> None:
    for i in range(3):
        put_at_step(ctx.engine, new_project(ctx, title=f"p{i}"), "done")
    new_project(ctx, title="in progress")
    result = call(ctx, "get_portfolio", {})
    assert (result.content["done"], result.content["readiness"]) == (3, "ready to apply")
    for i in range(2):
        put_at_step(ctx.engine, new_project(ctx, title=f"q{i}"), "done")
    assert call(ctx, "get_portfolio", {}).content["readiness"] == "strong"


# ---------------------------------------------------------------- advance_step


def test_advance_with_failing_gate_returns_missing_and_keeps_step(ctx: ToolContext) -> None:
    pid = new_project(ctx, problem="too short", success_criteria="users are happy")
    result = call(ctx, "advance_step", {"project_id": pid})
    assert result.ok  # the tool ran; the gate said no
    assert result.content["ok"] is False
    assert result.content["step"] == "problem"
    fields = [m["field"] for m in result.content["gate"]["missing"]]
    assert fields == ["problem", "success_criteria"]
    assert len(result.content["missing"]) == 2
    assert get_project(ctx.engine, pid).step == "problem"
    assert rows(ctx.engine, StepTransition) == []


def test_advance_with_passing_gate_moves_one_step_and_records_it(ctx: ToolContext) -> None:
    pid = new_project(ctx)
    result = call(ctx, "advance_step", {"project_id": pid})
    assert result.ok and result.content["ok"] is True
    assert (result.content["from_step"], result.content["step"]) == ("problem", "build")
    assert result.project_id == pid
    assert get_project(ctx.engine, pid).step == "build"
    [transition] = rows(ctx.engine, StepTransition)
    assert (transition.project_id, transition.from_step, transition.to_step,
            transition.thread_id) == (pid, "problem", "build", "thread-ada")
    # build's gate is not met: a second advance does nothing
    again = call(ctx, "advance_step", {"project_id": pid})
    assert again.content["ok"] is False and again.content["step"] == "build"
    assert len(rows(ctx.engine, StepTransition)) == 1


def test_advance_on_done_project_refuses(ctx: ToolContext) -> None:
    pid = new_project(ctx)
    put_at_step(ctx.engine, pid, "done")
    result = call(ctx, "advance_step", {"project_id": pid})
    assert result.content["ok"] is False and result.content["step"] == "done"
    assert rows(ctx.engine, StepTransition) == []


def test_only_advance_step_changes_the_step(ctx: ToolContext, tmp_path: Path) -> None:
    pid = new_project(ctx)  # its problem gate passes, so a sneaky advance would be possible
    repo = make_repo(tmp_path / "repo")
    others: list[tuple[str, dict[str, Any]]] = [
        ("update_project", {"project_id": pid, "usage_note": "ran it", "repo": str(repo),
                            "mvp_scope": ["a"]}),
        ("record_evidence", {"project_id": pid, "kind": "evals",
                             "details": {"cases": 10, "pass_rate": 0.9, "grader": "judge"}}),
        ("record_lesson", {"project_id": pid, "kind": "decision", "text": "use bm25 first"}),
        ("audit_repository", {"project_id": pid, "path": str(repo)}),
        ("record_project_usage", {"project_id": pid, "model": "claude-haiku-5-5",
                                  "input_tokens": 10, "output_tokens": 5}),
        ("submit_postmortem", {"project_id": pid, "text": postmortem_text()}),
        ("draft_postmortem", {"project_id": pid}),
        ("check_deployment", {"project_id": pid, "url": "http://127.0.0.1:9/"}),
        ("get_portfolio", {}),
    ]
    for name, raw in others:
        assert call(ctx, name, raw).ok, name
        assert get_project(ctx.engine, pid).step == "problem", name
    assert rows(ctx.engine, StepTransition) == []
    assert call(ctx, "advance_step", {"project_id": pid}).content["step"] == "build"


def test_full_walk_through_six_steps(ctx: ToolContext, tmp_path: Path, local_site: str) -> None:
    local = ToolContext(ctx.engine, ctx.user_id, ctx.thread_id, allow_private_urls=True,
                        fetch_timeout=5)
    pid = new_project(ctx)

    def advance(expected: str) -> None:
        result = call(ctx, "advance_step", {"project_id": pid})
        assert result.content["ok"] is True, result.content
        assert result.content["step"] == expected

    advance("build")
    assert call(ctx, "update_project", {
        "project_id": pid, "repo": str(harden_repo(tmp_path / "r")), "mvp_scope": ["search"],
        "usage_note": "answered a real page"}).ok
    advance("deploy")
    assert call(local, "check_deployment", {"project_id": pid, "url": local_site}).content["ok"]
    advance("harden")
    for kind, details in [
        ("evals", {"cases": 24, "pass_rate": 91, "grader": "llm judge"}),
        ("ci_gate", {"provider": "github actions"}),
        ("observability", {"tool": "phoenix", "link": "https://phoenix.example/t/1"}),
        ("cost_tracking", {"cost_usd": 0.004, "per": "request"}),
    ]:
        assert call(ctx, "record_evidence",
                    {"project_id": pid, "kind": kind, "details": details}).ok
    advance("postmortem")
    assert call(ctx, "submit_postmortem",
                {"project_id": pid, "text": postmortem_text()}).content["passed_checks"]
    advance("repeat")
    assert get_project(ctx.engine, pid).step == "repeat"
    # repeat's gate needs a harder successor
    assert call(ctx, "advance_step", {"project_id": pid}).content["ok"] is False
    started = call(ctx, "start_next_project", {
        "from_project_id": pid, **FULL_PROBLEM, "title": "Agentic runbooks",
        "capabilities": ["retrieval", "agents"]})
    assert started.ok, started.content
    advance("done")
    transitions = [(t.from_step, t.to_step) for t in rows(ctx.engine, StepTransition)]
    assert transitions == [("problem", "build"), ("build", "deploy"), ("deploy", "harden"),
                           ("harden", "postmortem"), ("postmortem", "repeat"),
                           ("repeat", "done")]


# ---------------------------------------------------------------- start_next_project


def test_start_next_project_from_repeat_with_higher_difficulty(ctx: ToolContext) -> None:
    pid = new_project(ctx)  # difficulty 1
    put_at_step(ctx.engine, pid, "repeat")
    result = call(ctx, "start_next_project", {
        "from_project_id": pid, "title": "Harder", "problem": PROBLEM,
        "capabilities": ["retrieval", "agents", "agents"]})
    assert result.ok, result.content
    assert result.content["difficulty"] == 2
    assert result.content["previous"] == {"project_id": pid, "difficulty": 1}
    assert result.content["step"] == "problem"
    new = get_project(ctx.engine, result.content["project_id"])
    assert (new.previous_project_id, new.difficulty, new.user_id, new.problem) == (
        pid, 2, ctx.user_id, PROBLEM)
    assert get_project(ctx.engine, pid).step == "repeat"  # only advance_step moves it


def test_start_next_project_refuses_equal_difficulty(ctx: ToolContext) -> None:
    pid = new_project(ctx, capabilities=["retrieval", "agents"])
    put_at_step(ctx.engine, pid, "repeat")
    result = call(ctx, "start_next_project", {
        "from_project_id": pid, "title": "Same", "capabilities": ["streaming", "scale"]})
    assert not result.ok
    assert "harder" in result.content["error"] and "2" in result.content["error"]
    assert len(rows(ctx.engine, Project)) == 1


def test_start_next_project_refuses_source_not_at_repeat(ctx: ToolContext) -> None:
    pid = new_project(ctx)
    put_at_step(ctx.engine, pid, "postmortem")
    result = call(ctx, "start_next_project", {
        "from_project_id": pid, "title": "Too soon", "capabilities": ["agents", "scale"]})
    assert not result.ok
    assert "'postmortem'" in result.content["error"] and "'repeat'" in result.content["error"]
    assert len(rows(ctx.engine, Project)) == 1


def test_start_next_project_needs_capabilities(ctx: ToolContext) -> None:
    pid = new_project(ctx)
    put_at_step(ctx.engine, pid, "repeat")
    result = call(ctx, "start_next_project", {"from_project_id": pid, "title": "x",
                                              "capabilities": []})
    assert not result.ok
    assert any(p.startswith("capabilities:") for p in result.content["problems"])


# ---------------------------------------------------------------- evidence and lessons


def test_record_evidence_stores_details_unverified(ctx: ToolContext) -> None:
    pid = new_project(ctx)
    result = call(ctx, "record_evidence", {
        "project_id": pid, "kind": "evals",
        "details": {"cases": 24, "pass_rate": 91, "grader": "llm judge"}})
    assert result.ok, result.content
    [ev] = rows(ctx.engine, Evidence)
    assert (ev.project_id, ev.kind, ev.verified) == (pid, "evals", False)
    assert ev.details == {"cases": 24, "pass_rate": 0.91, "grader": "llm judge"}
    assert result.content["evidence_id"] == ev.id


def test_record_cost_tracking_keeps_cost_as_exact_decimal_text(ctx: ToolContext) -> None:
    pid = new_project(ctx)
    result = call(ctx, "record_evidence", {
        "project_id": pid, "kind": "cost_tracking",
        "details": {"cost_usd": "0.0040", "per": "request"}})
    assert result.ok
    [ev] = rows(ctx.engine, Evidence)
    assert ev.details == {"cost_usd": "0.0040", "per": "request"}


@pytest.mark.parametrize(("kind", "details", "needle"), [
    ("evals", {"cases": "lots", "pass_rate": 0.9, "grader": "judge"}, "cases"),
    ("evals", {"cases": True, "pass_rate": 0.9}, "cases"),
    ("evals", {"cases": 0}, "cases"),
    ("evals", {"cases": 10, "pass_rate": 150}, "pass_rate"),
    ("evals", {"cases": 10, "pass_rate": -0.5}, "pass_rate"),
    ("evals", {"cases": 10, "pass_rate": "high"}, "pass_rate"),
    ("evals", {"cases": 10, "pass_rate": [0.9]}, "pass_rate"),
    ("evals", {"cases": 10, "pass_rate": {"value": 0.9}}, "pass_rate"),
    ("cost_tracking", {"cost_usd": 0.004}, "per"),
    ("cost_tracking", {"cost_usd": 0.004, "per": "week"}, "per"),
    ("cost_tracking", {"per": "day"}, "cost_usd"),
    ("cost_tracking", {"cost_usd": "cheap", "per": "day"}, "cost_usd"),
    ("cost_tracking", {"cost_usd": "NaN", "per": "day"}, "cost_usd"),
    ("cost_tracking", {"cost_usd": "-1", "per": "day"}, "cost_usd"),
    ("other", {"blob": "x" * 9000}, "large"),
    ("observability", "langfuse", "details"),
    ("tracing", {"tool": "langfuse"}, "kind"),
])
def test_record_evidence_refuses_bad_details(ctx: ToolContext, kind: str, details: Any,
                                             needle: str) -> None:
    pid = new_project(ctx)
    result = call(ctx, "record_evidence", {"project_id": pid, "kind": kind, "details": details})
    assert not result.ok
    assert needle in " ".join(result.content["problems"]), result.content
    assert rows(ctx.engine, Evidence) == []


def test_record_lesson_stores_it(ctx: ToolContext) -> None:
    pid = new_project(ctx)
    result = call(ctx, "record_lesson", {"project_id": pid, "kind": "tradeoff",
                                         "text": "  bm25 over embeddings: cheaper  "})
    assert result.ok
    [lesson] = rows(ctx.engine, Lesson)
    assert (lesson.project_id, lesson.kind, lesson.text) == (
        pid, "tradeoff", "bm25 over embeddings: cheaper")


@pytest.mark.parametrize("raw", [{"kind": "lesson", "text": "abc"},
                                 {"kind": "worked", "text": "ok"},
                                 {"kind": "worked", "text": 12345}])
def test_record_lesson_refuses_bad_input(ctx: ToolContext, raw: dict[str, Any]) -> None:
    pid = new_project(ctx)
    assert not call(ctx, "record_lesson", {"project_id": pid, **raw}).ok
    assert rows(ctx.engine, Lesson) == []


# ---------------------------------------------------------------- audit


def test_audit_repository_stores_audit_evidence(ctx: ToolContext, tmp_path: Path) -> None:
    pid = new_project(ctx)
    repo = make_repo(tmp_path / "repo", commits=2)
    result = call(ctx, "audit_repository", {"project_id": pid, "path": str(repo)})
    assert result.ok, result.content
    assert (result.content["is_git"], result.content["commits"]) == (True, 2)
    [ev] = rows(ctx.engine, Evidence)
    assert (ev.kind, ev.verified, ev.ok) == ("audit", True, True)
    assert ev.details["commits"] == 2
    assert ev.details["path"] == str(repo.resolve())


def test_audit_of_plain_directory_is_stored_not_ok(ctx: ToolContext, tmp_path: Path) -> None:
    pid = new_project(ctx)
    assert call(ctx, "audit_repository", {"project_id": pid, "path": str(tmp_path)}).ok
    [ev] = rows(ctx.engine, Evidence)
    assert (ev.kind, ev.ok, ev.details["is_git"]) == ("audit", False, False)


def test_audit_of_missing_path_is_an_error(ctx: ToolContext, tmp_path: Path) -> None:
    pid = new_project(ctx)
    result = call(ctx, "audit_repository", {"project_id": pid, "path": str(tmp_path / "nope")})
    assert not result.ok
    assert "does not exist" in result.content["error"]
    assert rows(ctx.engine, Evidence) == []


# ---------------------------------------------------------------- deployment


def test_check_deployment_of_local_site_stores_verified_evidence(
        ctx: ToolContext, local_site: str) -> None:
    pid = new_project(ctx)
    local = ToolContext(ctx.engine, ctx.user_id, allow_private_urls=True, fetch_timeout=5)
    result = call(local, "check_deployment", {"project_id": pid, "url": local_site})
    assert result.ok
    assert (result.content["ok"], result.content["status_code"]) == (True, 200)
    assert isinstance(result.content["latency_ms"], int)
    [ev] = rows(ctx.engine, Evidence)
    assert (ev.kind, ev.verified, ev.ok) == ("deployment", True, True)
    assert ev.details["url"] == local_site and ev.details["status_code"] == 200


def test_check_deployment_refuses_loopback_by_default(ctx: ToolContext, local_site: str) -> None:
    pid = new_project(ctx)
    result = call(ctx, "check_deployment", {"project_id": pid, "url": local_site})
    assert result.ok  # a refusal is a result, not an error
    assert result.content["ok"] is False
    assert "loopback" in result.content["reason"]
    [ev] = rows(ctx.engine, Evidence)
    assert (ev.kind, ev.verified, ev.ok) == ("deployment", True, False)
    assert "loopback" in ev.details["reason"]


# ---------------------------------------------------------------- project usage


def test_record_project_usage_costs_from_the_price_table(ctx: ToolContext) -> None:
    pid = new_project(ctx)
    result = call(ctx, "record_project_usage", {
        "project_id": pid, "model": "Claude-Sonnet-5-5", "input_tokens": 1_000_000,
        "output_tokens": 0, "requests": 40, "period": "day"})
    assert result.ok
    assert result.content["cost_usd"] == "2" and result.content["cost_known"] is True
    [row] = rows(ctx.engine, ProjectUsage)
    assert row.cost_usd == Decimal("2")
    assert (row.model, row.input_tokens, row.requests, row.period) == (
        "claude-sonnet-5-5", 1_000_000, 40, "day")


def test_record_project_usage_unknown_model_has_unknown_cost(ctx: ToolContext) -> None:
    pid = new_project(ctx)
    result = call(ctx, "record_project_usage", {
        "project_id": pid, "model": "gpt-9-ultra", "input_tokens": 1000, "output_tokens": 10})
    assert result.ok
    assert result.content["cost_usd"] is None and result.content["cost_known"] is False
    [row] = rows(ctx.engine, ProjectUsage)
    assert row.cost_usd is None


@pytest.mark.parametrize("raw", [
    {"input_tokens": -1, "output_tokens": 0},
    {"input_tokens": "many", "output_tokens": 0},
    {"input_tokens": 1, "output_tokens": 1, "requests": 0},
    {"input_tokens": 1, "output_tokens": 1, "period": "fortnight"},
    {"input_tokens": 1},
])
def test_record_project_usage_refuses_bad_counts(ctx: ToolContext, raw: dict[str, Any]) -> None:
    pid = new_project(ctx)
    result = call(ctx, "record_project_usage", {"project_id": pid, "model": "claude-opus-5",
                                                **raw})
    assert not result.ok and result.content["problems"]
    assert rows(ctx.engine, ProjectUsage) == []


# ---------------------------------------------------------------- post-mortem submissions


def test_submit_postmortem_keeps_numbered_versions(ctx: ToolContext) -> None:
    pid = new_project(ctx)
    short = "What worked: caching. What didn't: nothing."
    first = call(ctx, "submit_postmortem", {"project_id": pid, "text": short})
    assert first.ok
    assert (first.content["version"], first.content["words"]) == (1, 6)
    assert first.content["passed_checks"] is False
    failed = " ".join(first.content["failed"])
    assert "1200" in failed and "tradeoffs" in failed

    full = postmortem_text()
    second = call(ctx, "submit_postmortem", {"project_id": pid, "text": full})
    assert second.ok
    assert second.content["version"] == 2
    assert second.content["failed"] == [] and second.content["passed_checks"] is True
    assert 1200 <= second.content["words"] <= 2000

    versions = sorted(rows(ctx.engine, PostmortemVersion), key=lambda v: v.version)
    assert [(v.version, v.source) for v in versions] == [(1, "submission"), (2, "submission")]
    assert versions[0].text == short  # never overwritten
    assert versions[1].text == full.strip()
    assert versions[0].report["failed"] == first.content["failed"]


def test_submit_postmortem_reports_missing_sections(ctx: ToolContext) -> None:
    pid = new_project(ctx)
    text = "## What worked\n" + " ".join(["word"] * 1400)
    result = call(ctx, "submit_postmortem", {"project_id": pid, "text": text})
    assert result.ok
    assert result.content["failed"] == ["sections on what didn't, tradeoffs"]
    assert any(p.startswith("length: ") for p in result.content["passed"])


def test_submit_postmortem_refuses_figures_the_evidence_does_not_support(
        ctx: ToolContext) -> None:
    pid = new_project(ctx)
    assert call(ctx, "record_evidence", {"project_id": pid, "kind": "evals", "details": {
        "cases": 24, "pass_rate": 0.91, "grader": "judge"}}).ok
    grounded = postmortem_text() + "\nThe evals pass at 91% over 24 cases."
    ok = call(ctx, "submit_postmortem", {"project_id": pid, "text": grounded})
    assert ok.content["failed"] == [] and ok.content["grounding"]["grounded"] is True

    invented = postmortem_text() + "\nThe evals pass at 99% over 24 cases."
    bad = call(ctx, "submit_postmortem", {"project_id": pid, "text": invented})
    assert bad.ok and bad.content["passed_checks"] is False
    assert [u["item"] for u in bad.content["grounding"]["unsupported"]] == ["99%"]
    assert any("99%" in f for f in bad.content["failed"])

    todo = postmortem_text() + "\nThe evals pass at [TODO: 99%] over 24 cases."
    assert call(ctx, "submit_postmortem",
                {"project_id": pid, "text": todo}).content["passed_checks"] is True
    assert [v.version for v in rows(ctx.engine, PostmortemVersion)] == [1, 2, 3]


def test_draft_postmortem_stores_a_draft_version(ctx: ToolContext) -> None:
    pid = new_project(ctx)
    assert call(ctx, "record_lesson", {"project_id": pid, "kind": "worked",
                                       "text": "bm25 found the right runbook first"}).ok
    result = call(ctx, "draft_postmortem", {"project_id": pid})
    assert result.ok, result.content
    content = result.content
    assert content["version"] == 1
    assert content["words"] == word_count(content["text"]) > 100
    assert isinstance(content["grounding"]["grounded"], bool)
    assert content["sections"]
    [row] = rows(ctx.engine, PostmortemVersion)
    assert (row.version, row.source, row.text, row.words) == (
        1, "draft", content["text"], content["words"])

    # drafts and submissions share one numbering; nothing is overwritten
    assert call(ctx, "submit_postmortem",
                {"project_id": pid, "text": postmortem_text()}).content["version"] == 2
    assert call(ctx, "draft_postmortem", {"project_id": pid}).content["version"] == 3
    versions = sorted(rows(ctx.engine, PostmortemVersion), key=lambda v: v.version)
    assert [v.source for v in versions] == ["draft", "submission", "draft"]
    assert versions[0].text == content["text"]


def test_a_draft_alone_does_not_pass_the_postmortem_gate(ctx: ToolContext) -> None:
    pid = new_project(ctx)
    put_at_step(ctx.engine, pid, "postmortem")
    assert call(ctx, "draft_postmortem", {"project_id": pid}).ok
    result = call(ctx, "advance_step", {"project_id": pid})
    assert result.content["ok"] is False and result.content["step"] == "postmortem"
    assert get_project(ctx.engine, pid).step == "postmortem"
