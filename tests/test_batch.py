"""Batch drafting at half price (agent/batch.py) through the real anthropic SDK against the
local Messages-API server's /v1/messages/batches: results matched by custom_id whatever
their order, errored and expired requests reported with reasons, the ledger at the batch
rate, a crash between submitting and collecting survived, and the `coach postmortem
batch` command end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anthropic
import pytest
from sqlalchemy import Engine
from sqlmodel import select

from agent.batch import collect, pending_batches, stale_everywhere, submit
from evals.messages_api import EXPIRED, MessagesAPI, cited_reply, error
from memory.models import (
    Evidence,
    LedgerEntry,
    Lesson,
    PostmortemBatch,
    PostmortemVersion,
    Project,
)
from memory.store import open_engine, session_scope
from memory.users import ensure_user
from seam.pricing import Usage, price_table

MODEL = "claude-sonnet-5-5"
COACH = Path(sys.executable).with_name("coach")


def add_project(engine: Engine, title: str, user: str = "ann") -> tuple[int, int]:
    uid = ensure_user(engine, user)
    with session_scope(engine) as s:
        p = Project(user_id=uid, title=title, step="postmortem", audience="junior SREs",
                    problem=f"{title}: engineers lose hours searching runbooks.",
                    mvp_scope=["search"], capabilities=["retrieval"], difficulty=1)
        s.add(p)
        s.flush()
        assert p.id is not None
        s.add(Evidence(project_id=p.id, kind="evals",
                       details={"cases": 24, "pass_rate": 0.91, "grader": "llm judge"}))
        s.add(Lesson(project_id=p.id, kind="worked", text=f"{title} search was fast"))
        return uid, p.id


def draft_reply(title: str, pid: int) -> dict[str, object]:
    return cited_reply([(f"# Post-mortem: {title}\n\n## What worked\n\n", []),
                        ("The project's problem: “engineers lose hours searching runbooks”.",
                         [f"project:{pid}:problem"]),
                        (" [TODO: What changed after the first week?]", [])])


@pytest.fixture
def api() -> Iterator[MessagesAPI]:
    with MessagesAPI(batch_polls=2) as server:
        yield server


@pytest.fixture
def client(api: MessagesAPI) -> Iterator[anthropic.Anthropic]:
    c = anthropic.Anthropic(api_key="test-key", base_url=api.base_url, max_retries=0)
    yield c
    c.close()


def test_a_batch_with_an_errored_and_an_expired_request(engine: Engine, api: MessagesAPI,
                                                        client: anthropic.Anthropic) -> None:
    (uid, a), (_, b), (_, c) = (add_project(engine, t) for t in ("Alpha", "Beta", "Gamma"))
    api.batch_script.update({
        f"pm-{a}-u{uid}": draft_reply("Alpha", a),
        f"pm-{b}-u{uid}": error(400, "invalid_request_error", "prompt is too long"),
        f"pm-{c}-u{uid}": EXPIRED})
    todo = stale_everywhere(engine, uid, all_users=False)
    assert todo == [(uid, a), (uid, b), (uid, c)]
    row = submit(engine, client, MODEL, uid, todo)
    assert row is not None and row.batch_id.startswith("msgbatch_")
    [sent] = api.batch_requests
    assert [r["custom_id"] for r in sent["requests"]] == [f"pm-{p}-u{uid}" for p in (a, b, c)]
    params = sent["requests"][0]["params"]
    assert params["model"] == MODEL and "stream" not in params
    assert params["messages"][0]["content"][0]["type"] == "search_result"

    seen: list[str] = []
    got = collect(engine, client, row, price_table(), poll_seconds=0,
                  progress=lambda counts, status: seen.append(status))
    assert seen == ["in_progress", "in_progress", "ended"]  # polled until it ended
    # Results come back in reverse order; each is matched by its custom_id.
    assert [d["project_id"] for d in got.drafted] == [a]
    assert sorted((f["project_id"], f["status"], f["error"]) for f in got.failed) == sorted([
        (b, "errored", "invalid_request_error: prompt is too long"),
        (c, "expired", "expired: the batch ended (24 h at most) before this request was "
                       "processed")])
    with session_scope(engine) as s:
        [version] = s.exec(select(PostmortemVersion)).all()
        assert (version.project_id, version.source) == (a, "draft")
        assert version.report["sentences"][0]["sources"] == [f"project:{a}:problem"]
        [entry] = s.exec(select(LedgerEntry)).all()
        stored = s.exec(select(PostmortemBatch)).one()
        assert stored.status == "collected" and stored.collected_at is not None
    assert (entry.project_id, entry.purpose, entry.service_tier, entry.status) == (
        a, "postmortem", "batch", "ok")
    # Half the standard rate for the same tokens.
    usage = Usage(input_tokens=entry.input_tokens, output_tokens=entry.output_tokens)
    standard = price_table().cost(MODEL, usage, entry.created_at.date())
    assert standard is not None and entry.cost_usd == standard / 2
    assert got.drafted[0]["cost_usd"] == float(entry.cost_usd)
    # The failed projects stay stale: the next batch drafts them again.
    assert [pid for _, pid in stale_everywhere(engine, uid, all_users=False)] == [b, c]


def test_a_batch_survives_a_crash_between_submitting_and_collecting(
        engine: Engine, api: MessagesAPI, client: anthropic.Anthropic) -> None:
    uid, a = add_project(engine, "Alpha")
    api.batch_script[f"pm-{a}-u{uid}"] = draft_reply("Alpha", a)
    row = submit(engine, client, MODEL, uid, stale_everywhere(engine, uid, False))
    assert row is not None
    del row  # the process dies here: only the database remembers the batch
    # A project waiting in a batch is not submitted again.
    assert stale_everywhere(engine, uid, all_users=False) == []
    [found] = pending_batches(engine, uid)
    got = collect(engine, client, found, price_table(), poll_seconds=0)
    assert [d["project_id"] for d in got.drafted] == [a] and got.failed == []
    assert pending_batches(engine, uid) == []
    assert len(api.batch_requests) == 1


def test_all_users_takes_every_learners_projects(engine: Engine) -> None:
    uid, a = add_project(engine, "Alpha", user="ann")
    other, b = add_project(engine, "Beta", user="bob")
    assert stale_everywhere(engine, uid, all_users=False) == [(uid, a)]
    assert stale_everywhere(engine, uid, all_users=True) == [(uid, a), (other, b)]


def test_the_command_submits_polls_collects_and_resumes(tmp_path: Path, api: MessagesAPI,
                                                         coach_home: str) -> None:
    import os

    db = tmp_path / "cohort.db"
    engine = open_engine(f"sqlite:///{db}")
    try:
        uid, a = add_project(engine, "Alpha")
        _, b = add_project(engine, "Beta")
    finally:
        engine.dispose()
    api.batch_script.update({f"pm-{a}-u{uid}": draft_reply("Alpha", a),
                             f"pm-{b}-u{uid}": error(500, "api_error", "overloaded")})
    env = {**os.environ, "COACH_HOME": coach_home, "ANTHROPIC_API_KEY": "test-key",
           "ANTHROPIC_BASE_URL": api.base_url}
    args = [str(COACH), "--db", str(db), "--user", "ann", "--model", MODEL, "postmortem",
            "batch", "--poll", "0", "--json"]
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr  # one request failed
    summary = json.loads(done.stdout)
    assert summary["service_tier"] == "batch" and len(summary["batches"]) == 1
    assert [d["project_id"] for d in summary["drafted"]] == [a]
    assert summary["failed"] == [{"custom_id": f"pm-{b}-u{uid}", "project_id": b,
                                  "status": "errored", "error": "api_error: overloaded"}]
    assert summary["cost_usd"] > 0
    again = subprocess.run([*args[:-3], "--resume", "--poll", "0", "--json"], env=env,
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["batches"] == []  # nothing left to collect
    assert len(api.batch_requests) == 1
