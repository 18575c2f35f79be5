"""`coach postmortem draft|batch`, run as the real executable in subprocesses: the JSON
shapes, the Markdown file, errors, and a batch that is resumable and idempotent."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import select

from memory.models import Evidence, Lesson, PostmortemVersion, Project
from memory.store import open_engine, session_scope
from memory.users import ensure_user
from tools.drafter import SECTIONS, TARGET_WORDS

pytestmark = pytest.mark.slow

COACH = Path(sys.executable).with_name("coach")
USER = "ann"
DRAFT_KEYS = {"project_id", "version", "words", "target_words", "sections", "grounding",
              "sentences", "todos", "path"}


@pytest.fixture
def env(coach_home: str) -> dict[str, str]:
    import os

    out = dict(os.environ)
    out["COACH_HOME"] = coach_home
    out["COACH_USER"] = USER
    out["COLUMNS"] = "80"
    return out


@pytest.fixture
def engine(coach_home: str) -> Iterator[Engine]:
    """The database the `coach` subprocesses use (COACH_HOME's default)."""
    Path(coach_home).mkdir(parents=True, exist_ok=True)
    eng = open_engine(f"sqlite:///{Path(coach_home) / 'coach.db'}")
    yield eng
    eng.dispose()


def coach(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(COACH), *args], input="", env=env, capture_output=True,
                          text=True, timeout=120)


def ok_json(*args: str, env: dict[str, str]) -> Any:
    done = coach(*args, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr  # no progress bar or chatter off a terminal
    [line] = done.stdout.splitlines()
    return json.loads(line)


def add_project(engine: Engine, title: str, step: str = "postmortem",
                user: str = USER) -> int:
    """Test setup only: a project placed at a step with a few records, gates not walked."""
    user_id = ensure_user(engine, user)
    with session_scope(engine) as s:
        project = Project(user_id=user_id, title=title, step=step, audience="junior SREs",
                          problem=f"{title}: engineers lose hours searching runbooks.",
                          mvp_scope=["search"], capabilities=["retrieval"], difficulty=1)
        s.add(project)
        s.flush()
        assert project.id is not None
        s.add(Evidence(project_id=project.id, kind="evals",
                       details={"cases": 24, "pass_rate": 0.91, "grader": "llm judge"}))
        s.add(Lesson(project_id=project.id, kind="worked", text=f"{title} search was fast"))
        return project.id


def evidence_id(engine: Engine, pid: int, kind: str) -> int | None:
    with session_scope(engine) as s:
        return s.exec(select(Evidence).where(Evidence.project_id == pid,
                                             Evidence.kind == kind)).one().id


def add_lesson(engine: Engine, pid: int, text: str) -> None:
    with session_scope(engine) as s:
        s.add(Lesson(project_id=pid, kind="didnt_work", text=text))


def versions(engine: Engine) -> list[tuple[int, int, str]]:
    with session_scope(engine) as s:
        rows = s.exec(select(PostmortemVersion)).all()
        return sorted((v.project_id, v.version, v.source) for v in rows)


def drafted(summary: dict[str, Any]) -> list[int]:
    return [d["project_id"] for d in summary["drafted"]]


# -- draft ---------------------------------------------------------------------------------


def test_draft_json_shape_and_markdown_file(engine: Engine, env: dict[str, str],
                                            tmp_path: Path) -> None:
    pid = add_project(engine, "Runbook search")
    first = ok_json("postmortem", "draft", str(pid), "--json", env=env)
    assert set(first) == DRAFT_KEYS
    assert (first["project_id"], first["version"], first["path"]) == (pid, 1, None)
    assert first["target_words"] == TARGET_WORDS
    assert first["sections"] == list(SECTIONS)
    assert isinstance(first["words"], int) and first["words"] > 300
    assert first["grounding"]["grounded"] is True and first["grounding"]["unsupported"] == []
    assert first["grounding"]["checked"] >= 2  # 24 cases, 91%
    # Every sentence is traceable: its records, or that it is framing or a question.
    kinds = {s["kind"] for s in first["sentences"]}
    assert kinds == {"fact", "quote", "framing", "todo"}
    [cases] = [s for s in first["sentences"] if s["text"].startswith("The eval set has 24")]
    assert cases["kind"] == "fact" and cases["sources"] == [
        f"evidence:{evidence_id(engine, pid, 'evals')}"]
    [lesson] = [s for s in first["sentences"] if "Runbook search search was fast" in s["text"]]
    assert lesson["kind"] == "quote" and lesson["sources"][0].startswith("lesson:")
    assert all(s["sources"] for s in first["sentences"] if s["kind"] in ("fact", "quote"))
    assert {t["key"] for t in first["todos"]} >= {"tldr", "next", "deployed"}
    assert all(f"[TODO: {t['question'].split(' (about')[0]}]" in
               "".join(s["text"] for s in first["sentences"]) for t in first["todos"])

    out = tmp_path / "drafts" / "runbook.md"
    out.parent.mkdir()
    second = ok_json("postmortem", "draft", str(pid), "--out", str(out), "--json", env=env)
    assert (second["version"], second["path"]) == (2, str(out))
    markdown = out.read_text(encoding="utf-8")
    assert markdown.startswith("# Post-mortem: Runbook search\n")
    assert "24 cases" in markdown and "Runbook search search was fast" in markdown
    with session_scope(engine) as s:
        stored = s.exec(select(PostmortemVersion).where(
            PostmortemVersion.project_id == pid, PostmortemVersion.version == 2)).one()
        assert stored.text == markdown and stored.words == second["words"]
    assert versions(engine) == [(pid, 1, "draft"), (pid, 2, "draft")]


def test_draft_without_json_prints_markdown_and_a_summary(engine: Engine,
                                                          env: dict[str, str]) -> None:
    pid = add_project(engine, "Runbook search")
    done = coach("postmortem", "draft", str(pid), env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("# Post-mortem: Runbook search")
    assert "## Appendix: metrics" in done.stdout
    assert done.stderr.startswith("version 1: ") and "(target 1,500)" in done.stderr
    assert "0 unsupported claim(s)" in done.stderr


@pytest.mark.parametrize("whose", ["missing", "another learner's"])
def test_draft_of_a_project_that_is_not_yours_fails_with_one_line(
        engine: Engine, env: dict[str, str], whose: str) -> None:
    pid = 99 if whose == "missing" else add_project(engine, "Bob's", user="bob")
    done = coach("postmortem", "draft", str(pid), "--json", env=env)
    assert done.returncode == 1
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("coach: error:") and f"no project {pid}" in line
    assert versions(engine) == []


# -- batch ---------------------------------------------------------------------------------


def test_batch_drafts_each_stale_project_once(engine: Engine, env: dict[str, str]) -> None:
    ids = [add_project(engine, f"Project {n}") for n in ("A", "B", "C")]
    elsewhere = add_project(engine, "Still hardening", step="harden")
    add_project(engine, "Bob's", user="bob")  # another learner's: not this batch's

    first = ok_json("postmortem", "batch", "--workers", "3", "--json", env=env)
    assert sorted(drafted(first)) == ids and first["failed"] == [] and first["left"] == 0
    assert first["cost_usd"] == 0
    for d in first["drafted"]:
        assert d["version"] == 1 and d["words"] > 300 and d["unsupported"] == 0
    assert versions(engine) == [(pid, 1, "draft") for pid in ids]

    again = ok_json("postmortem", "batch", "--json", env=env)
    assert again == {"drafted": [], "failed": [], "left": 0, "cost_usd": 0}
    assert versions(engine) == [(pid, 1, "draft") for pid in ids]

    add_lesson(engine, ids[1], "the chunker split tables in half")
    third = ok_json("postmortem", "batch", "--json", env=env)
    assert drafted(third) == [ids[1]]
    assert third["drafted"][0]["version"] == 2
    with session_scope(engine) as s:
        newest = s.exec(select(PostmortemVersion).where(
            PostmortemVersion.project_id == ids[1], PostmortemVersion.version == 2)).one()
        assert "the chunker split tables in half" in newest.text
    assert elsewhere not in [v[0] for v in versions(engine)]


def test_batch_resumes_after_an_interruption(engine: Engine, env: dict[str, str]) -> None:
    ids = [add_project(engine, f"Project {n}") for n in ("A", "B", "C")]
    # A batch that died after its first draft left exactly this behind.
    assert ok_json("postmortem", "draft", str(ids[0]), "--json", env=env)["version"] == 1

    resumed = ok_json("postmortem", "batch", "--json", env=env)
    assert sorted(drafted(resumed)) == ids[1:]
    assert resumed["cost_usd"] == 0
    assert versions(engine) == [(pid, 1, "draft") for pid in ids]


def test_batch_text_summary(engine: Engine, env: dict[str, str]) -> None:
    ids = [add_project(engine, f"Project {n}") for n in ("A", "B")]
    done = coach("postmortem", "batch", env=env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 3
    for line, pid in zip(lines, ids, strict=False):
        assert line.startswith(f"project {pid}: version 1, ") and \
            line.endswith(" words, 0 unsupported claim(s)"), line
    assert lines[-1] == "2 drafted, 0 failed, 0 left; cost $0.0000"
    nothing = coach("postmortem", "batch", env=env)
    assert nothing.stdout.strip() == "0 drafted, 0 failed, 0 left; cost $0.0000"
