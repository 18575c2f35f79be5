"""Paging of the trace and project lists (issue 16, point 3): a stable cursor through
GET /api/traces and GET /api/projects on SQLite and PostgreSQL, rows added between page
fetches, filters, a bound on what one request scans, bad cursors, learner isolation;
`coach traces list` and `coach projects list` with --cursor."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, insert
from sqlmodel import col, select

from memory.models import Project, StoredSpan, utcnow
from memory.paging import BadCursor, make_cursor, read_cursor
from memory.store import open_engine, session_scope
from memory.users import ensure_user
from telemetry.traces import TraceFilter, trace_page
from tests.learner import coach_env, run_coach, run_together
from tests.webserver import Server, running

# In the past, so that a turn stamped `utcnow()` is newer than every seeded one.
START = datetime(2024, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def turn_spans(user_id: int, when: datetime, *, error: bool = False, cost: float = 0.001,
               duration_ms: int = 40) -> tuple[str, list[dict[str, Any]]]:
    """One turn's stored spans: the root naming its learner and a model call under it."""
    trace_id, root_id = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    common = {"trace_id": trace_id, "kind": "INTERNAL", "start_time": when,
              "end_time": when + timedelta(milliseconds=duration_ms), "status_message": None}
    return trace_id, [
        {**common, "span_id": root_id, "parent_id": None, "name": "invoke_agent coach",
         "duration_us": duration_ms * 1000, "status": "unset", "user_id": user_id,
         "thread_id": "t-seeded", "attributes": {"coach.step": "problem"}},
        {**common, "span_id": uuid.uuid4().hex[:16], "parent_id": root_id,
         "name": "chat offline", "duration_us": duration_ms * 500,
         "status": "error" if error else "ok", "user_id": None, "thread_id": None,
         "attributes": {"gen_ai.operation.name": "chat", "llm.cost.total": cost}}]


def seed_turns(engine: Engine, user_id: int, n: int, *, start: datetime = START,
               every: timedelta = -timedelta(minutes=1), **kw: Any) -> list[str]:
    """`n` stored turns `every` apart from `start`, in one write; their trace ids in the
    order they were made."""
    made = [turn_spans(user_id, start + i * every, **kw) for i in range(n)]
    with engine.begin() as conn:
        conn.execute(insert(StoredSpan.__table__),  # type: ignore[attr-defined]
                     [row for _, rows in made for row in rows])
    return [trace_id for trace_id, _ in made]


def seed_turn(engine: Engine, user_id: int, when: datetime, **kw: Any) -> str:
    [trace_id] = seed_turns(engine, user_id, 1, start=when, **kw)
    return trace_id


def seed_projects(engine: Engine, user_id: int, steps: list[str]) -> list[int]:
    with session_scope(engine) as s:
        projects = [Project(user_id=user_id, title=f"Project {i}", step=step)
                    for i, step in enumerate(steps)]
        s.add_all(projects)
        s.flush()
        return [p.id for p in projects if p.id is not None]


def pages(c: httpx.Client, path: str, key: str, between: Any = None,
          **params: Any) -> tuple[list[Any], list[dict[str, Any]]]:
    """Every item of a paged list, following `next_cursor`; `between()` runs after page 1."""
    seen: list[Any] = []
    answers: list[dict[str, Any]] = []
    cursor = None
    while True:
        r = c.get(path, params={**params, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200, r.text
        answers.append(r.json())
        seen += [item["trace_id" if key == "traces" else "id"] for item in r.json()[key]]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            return seen, answers
        if between is not None and len(answers) == 1:
            between()
        assert len(answers) < 100, "the cursor does not advance"


@pytest.fixture
def server(store_url: str, tmp_path: Path) -> Iterator[Server]:
    with running(store_url, tmp_path / "home") as srv:
        yield srv


# -- the cursor itself ------------------------------------------------------------------------

def test_a_cursor_reads_back_only_as_the_list_that_made_it() -> None:
    cursor = make_cursor("traces", START, 41)
    assert read_cursor(cursor, "traces", datetime, int) == (START, 41)
    assert len(cursor) < 50  # short enough to paste from a `more:` line
    with pytest.raises(ValueError, match="no time zone"):  # the store never has such times
        make_cursor("traces", START.replace(tzinfo=None), 41)
    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    for bad, kind, shape in [
            (cursor, "threads", (datetime, str)),  # another list's cursor
            (cursor, "traces", (datetime,)),  # the right list, the wrong shape
            (make_cursor("projects", 2**31), "projects", (int,)),  # past a 32-bit id
            (make_cursor("projects", True), "projects", (int,)),
            (make_cursor("threads", START, "a\x00b"), "threads", (datetime, str)),
            (make_cursor("threads", "yesterday", "t"), "threads", (datetime, str)),
            (make_cursor("threads", START.isoformat(), "t"), "threads", (datetime, str)),
            (make_cursor("traces", 10**20, 1), "traces", (datetime, int)),  # past year 9999
            ("garbage!", "traces", (datetime, int)), ("", "traces", (datetime, int)),
            ("W10", "traces", (datetime, int))]:  # "[]"
        with pytest.raises(BadCursor, match=f"not a cursor from the {kind} list"):
            read_cursor(bad, kind, *shape)


# -- traces -----------------------------------------------------------------------------------

def test_traces_page_by_a_stable_cursor_while_turns_are_added(server: Server) -> None:
    c = server.client(server.learner("ada"))
    ada = ensure_user(server.engine, "ada")
    made = seed_turns(server.engine, ada, 7)
    # Two turns that started in the same microsecond, across a page boundary (limit 3):
    # the id breaks the tie, so neither is skipped or shown twice.
    tied = [seed_turn(server.engine, ada, START - timedelta(minutes=10)) for _ in range(2)]
    older = seed_turns(server.engine, ada, 2, start=START - timedelta(minutes=20))
    added: list[str] = []
    seen, answers = pages(c, "/api/traces", "traces", limit=3, between=lambda: added.append(
        seed_turn(server.engine, ada, utcnow())))  # newer than every page still to come
    assert seen == made + list(reversed(tied)) + older  # newest first; ties: newest id first
    assert [len(page["traces"]) for page in answers] == [3, 3, 3, 2]
    assert added and added[0] not in seen
    first = c.get("/api/traces").json()
    assert first["traces"][0]["trace_id"] == added[0] and first["next_cursor"] is None
    assert {"trace_id", "start_time", "duration_ms", "model_calls", "cost_usd",
            "error"} <= set(first["traces"][0])


def test_filtered_traces_page_without_skipping_or_repeating(server: Server) -> None:
    c = server.client(server.learner("ada"))
    ada = ensure_user(server.engine, "ada")
    made = [seed_turn(server.engine, ada, START - timedelta(minutes=i), error=i % 3 == 0,
                      cost=0.01 if i % 2 else 0.001) for i in range(12)]
    failed = [t for i, t in enumerate(made) if i % 3 == 0]
    costly = [t for i, t in enumerate(made) if i % 2]
    seen, answers = pages(c, "/api/traces", "traces", errors="true", limit=2,
                          between=lambda: seed_turn(server.engine, ada, utcnow(), error=True))
    assert seen == failed and all(t["error"] for page in answers for t in page["traces"])
    assert pages(c, "/api/traces", "traces", min_cost_usd=0.005, limit=4)[0] == costly
    both, _ = pages(c, "/api/traces", "traces", errors="true", min_cost_usd=0.005, limit=1)
    assert both == [t for t in failed if t in costly] and both


def test_a_rare_filter_scans_a_bounded_number_of_turns_and_says_where_to_go_on(
        server: Server) -> None:
    """One request looks at SCAN (500) turns at most; the page comes back empty with a
    cursor, and the next request finds the failed turn further back."""
    c = server.client(server.learner("ada"))
    ada = ensure_user(server.engine, "ada")
    [oldest_failure] = seed_turns(server.engine, ada, 1, start=START - timedelta(days=30),
                                  error=True)
    seed_turns(server.engine, ada, 520, every=-timedelta(seconds=1))
    first = c.get("/api/traces", params={"errors": "true"}).json()
    assert first["traces"] == [] and first["next_cursor"]
    second = c.get("/api/traces", params={"errors": "true",
                                          "cursor": first["next_cursor"]}).json()
    assert [t["trace_id"] for t in second["traces"]] == [oldest_failure]
    assert second["next_cursor"] is None


def test_trace_page_continues_from_the_last_turn_examined(engine: Engine) -> None:
    ada = ensure_user(engine, "ada")
    made = [seed_turn(engine, ada, START - timedelta(minutes=i), error=i in (1, 6))
            for i in range(8)]
    only_errors = TraceFilter(errors=True)
    page = trace_page(engine, ada, limit=3, only=only_errors, scan=4)
    assert [t["trace_id"] for t in page.traces] == [made[1]]  # turns 0-3 examined
    assert page.next_cursor == make_cursor("traces", START - timedelta(minutes=3),
                                           _span_id(engine, made[3]))
    rest = trace_page(engine, ada, limit=3, cursor=page.next_cursor, only=only_errors, scan=4)
    assert [t["trace_id"] for t in rest.traces] == [made[6]] and rest.next_cursor is None
    # Unfiltered, the bound never shortens a page; a full last page says nothing is left.
    assert [t["trace_id"] for t in trace_page(engine, ada, limit=8, scan=4).traces] == made
    assert trace_page(engine, ada, limit=8).next_cursor is None
    assert trace_page(engine, ada, limit=7).next_cursor is not None


def _span_id(engine: Engine, trace_id: str) -> int:
    with session_scope(engine) as s:
        found = s.exec(select(StoredSpan.id).where(
            StoredSpan.trace_id == trace_id, col(StoredSpan.parent_id).is_(None))).one()
    assert found is not None
    return found


def test_another_learners_traces_never_appear_even_with_their_cursor(server: Server) -> None:
    a, b = server.client(server.learner("ada")), server.client(server.learner("bob"))
    ada, bob = ensure_user(server.engine, "ada"), ensure_user(server.engine, "bob")
    mine, theirs = [], []
    for i in range(6):  # interleaved in time
        when = START - timedelta(minutes=i)
        mine.append(seed_turn(server.engine, ada, when))
        theirs.append(seed_turn(server.engine, bob, when + timedelta(seconds=30)))
    assert pages(a, "/api/traces", "traces", limit=4)[0] == mine
    cursor = a.get("/api/traces", params={"limit": 2}).json()["next_cursor"]
    # Ada's cursor is only a position in time: Bob sees his own turns from there on.
    bobs = b.get("/api/traces", params={"cursor": cursor}).json()["traces"]
    assert [t["trace_id"] for t in bobs] == theirs[2:]


@pytest.mark.parametrize("path", ["/api/traces", "/api/projects"])
def test_a_bad_cursor_is_422(server: Server, path: str) -> None:
    c = server.client(server.learner("ada"))
    others = {"/api/traces": make_cursor("projects", 1),
              "/api/projects": make_cursor("traces", START, 1)}
    for cursor in ["garbage!", others[path], make_cursor("threads", START, "t"),
                   make_cursor("traces", 10**20, 1),
                   make_cursor("projects", 2**40), "x" * 201]:
        r = c.get(path, params={"cursor": cursor})
        assert r.status_code == 422, (cursor, r.text)
        assert r.json()["detail"].startswith("invalid request"), r.text
        assert "cursor" in r.json()["detail"]
    assert c.get(path, params={"limit": 0}).status_code == 422
    assert c.get(path, params={"limit": 201}).status_code == 422


# -- projects ---------------------------------------------------------------------------------

def test_projects_page_in_the_order_started_and_readiness_counts_them_all(
        server: Server) -> None:
    a = server.client(server.learner("ada"))
    ada, bob = ensure_user(server.engine, "ada"), ensure_user(server.engine, "bob")
    made = seed_projects(server.engine, ada, ["done", "done", "done", "build", "problem",
                                              "deploy", "harden"])
    theirs = seed_projects(server.engine, bob, ["done", "problem"])
    added: list[int] = []
    seen, answers = pages(a, "/api/projects", "projects", limit=3, between=lambda: added.extend(
        seed_projects(server.engine, ada, ["problem"])))
    # A project started meanwhile comes last: nothing shifts, nothing is skipped or repeated.
    assert seen == made + added and len(added) == 1
    assert not set(theirs) & set(seen)
    assert [len(page["projects"]) for page in answers] == [3, 3, 2]
    # Readiness is the whole portfolio's on every page, even one without a done project.
    assert all((p["done"], p["readiness"]) == (3, "ready to apply") for p in answers)
    whole = a.get("/api/projects").json()
    assert [p["id"] for p in whole["projects"]] == made + added
    assert set(whole) == {"projects", "done", "readiness", "next_cursor"}
    assert whole["next_cursor"] is None
    assert {"id", "title", "step", "difficulty"} <= set(whole["projects"][0])


# -- the CLI ----------------------------------------------------------------------------------

@pytest.mark.slow
def test_cli_lists_follow_the_cursor_and_say_how_to_get_the_next_page(tmp_path: Path,
                                                                      coach_home: str) -> None:
    db = str(tmp_path / "cli.db")
    engine = open_engine(f"sqlite:///{db}")
    ada = ensure_user(engine, "ada")
    traces = seed_turns(engine, ada, 5)
    projects = seed_projects(engine, ada, ["done", "build", "problem"])
    engine.dispose()
    env = coach_env(coach_home)
    base = ("--db", db, "--user", "ada")

    seen, cursor = [], None
    while True:
        done = run_coach(*base, "traces", "list", "--limit", "2", "--json",
                         *(("--cursor", cursor) if cursor else ()), env=env)
        assert done.returncode == 0, done.stderr
        page = json.loads(done.stdout)
        seen += [t["trace_id"] for t in page["traces"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == traces

    first_json, first_text, whole, project_page, project_text, bad, wrong_list = run_together(
        (*base, "traces", "list", "--limit", "2", "--json"),
        (*base, "traces", "list", "--limit", "2"),
        (*base, "traces", "list"),
        (*base, "projects", "list", "--limit", "2", "--json"),
        (*base, "projects", "list", "--limit", "2"),
        (*base, "traces", "list", "--cursor", "garbage!"),
        (*base, "projects", "list", "--cursor", make_cursor("traces", START, 1)), env=env)
    next_traces = json.loads(first_json.stdout)["next_cursor"]
    assert f"more: coach traces list --limit 2 --cursor {next_traces}" in first_text.stdout
    assert whole.returncode == 0 and "more:" not in whole.stdout  # the default 20: one page
    listed = json.loads(project_page.stdout)
    assert [p["id"] for p in listed["projects"]] == projects[:2]
    assert (listed["done"], listed["readiness"]) == (1, "building")
    assert f"more: coach projects list --limit 2 --cursor {listed['next_cursor']}" in \
        project_text.stdout
    rest = run_coach(*base, "projects", "list", "--json", "--cursor", listed["next_cursor"],
                     env=env)
    assert [p["id"] for p in json.loads(rest.stdout)["projects"]] == projects[2:]
    assert json.loads(rest.stdout)["next_cursor"] is None
    for refused, kind in [(bad, "traces"), (wrong_list, "projects")]:
        assert refused.returncode == 2, refused.stderr
        assert "--cursor" in refused.stderr and f"not a cursor from the {kind} list" in \
            " ".join(refused.stderr.split())
