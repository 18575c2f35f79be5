"""Rate limits and the per-learner running-turn cap, against real `coach serve --workers 2`
processes: the counters live in the database (PostgreSQL here) or in Redis on 127.0.0.1,
so every worker sees the same ones. Leases and slots a turn could not free while the
database was away are freed once it is back. Paging of GET /api/threads."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from sqlalchemy import Engine, event
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from agent.threads import Threads
from agent.web.ratelimit import LIMITS_VARIABLE, RateLimited, make_guard
from memory.accounts import add_user
from memory.models import Thread
from memory.ratelimits import SLOTS, DatabaseStorage, TurnSlots
from memory.store import open_engine, session_scope
from memory.users import ensure_user
from telemetry.ingest import issue_token
from tests.test_ingest import app_spans, new_project, stored
from tests.test_web_serve import serving
from tests.webserver import STEP_ONE

pytestmark = pytest.mark.slow
LIMITS = ("threads=5/minute;bad_token=4/minute;signin=3/minute;messages=6/minute;"
          "ingest=3/minute")


def fresh(base: str, token: str | None = None) -> httpx.Client:
    # A new connection per request, so requests spread over the worker processes.
    headers = {"Authorization": f"Bearer {token}", "Connection": "close"} if token else \
        {"Connection": "close"}
    return httpx.Client(base_url=base, headers=headers, timeout=30)


def statuses(base: str, token: str | None, method: str, path: str, n: int,
             **kw: object) -> list[httpx.Response]:
    out = []
    for _ in range(n):
        with fresh(base, token) as c:
            out.append(c.request(method, path, **kw))  # type: ignore[arg-type]
    return out


def counter_rows(engine: Engine) -> int:
    from sqlalchemy import func, select

    from memory.ratelimits import COUNTERS

    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(COUNTERS)).scalar_one())


def assert_retry_after(r: httpx.Response) -> None:
    assert r.status_code == 429, r.text
    assert 1 <= int(r.headers["retry-after"]) <= 60
    assert "try again in" in r.json()["detail"] or "turns running" in r.json()["detail"]


def check_limits(base: str, token: str, engine: Engine) -> None:
    created = statuses(base, token, "POST", "/api/threads", 8)
    assert [r.status_code for r in created] == [200] * 5 + [429] * 3
    assert_retry_after(created[-1])

    bad = statuses(base, "pc_not-a-token", "GET", "/api/threads", 6)
    assert [r.status_code for r in bad] == [401] * 4 + [429] * 2
    assert_retry_after(bad[-1])
    # A valid token from the same address still works: only failures are limited.
    with fresh(base, token) as c:
        assert c.get("/api/threads").status_code == 200

    signins = statuses(base, None, "POST", "/signin", 5, content=b"token=nope",
                       headers={"content-type": "application/x-www-form-urlencoded"})
    assert [r.status_code for r in signins] == [401] * 3 + [429] * 2
    assert 1 <= int(signins[-1].headers["retry-after"]) <= 60

    thread = created[0].json()["thread_id"]
    said = statuses(base, token, "POST", f"/api/threads/{thread}/messages", 7,
                    json={"text": "status"})
    assert [r.status_code for r in said] == [200] * 6 + [429]
    assert_retry_after(said[-1])
    # The refused message started no turn: the thread has exactly the six.
    with fresh(base, token) as c:
        assert c.get(f"/api/threads/{thread}").json()["turns"] == 6

    # OTLP exports from the learner's app, per ingest token, across the workers too.
    project = new_project(engine, "ada")
    ingest = issue_token(engine, project)
    body = encode_spans(app_spans(1)).SerializeToString()
    exports = statuses(base, ingest, "POST", "/v1/traces", 5, content=body,
                       headers={"Content-Type": "application/x-protobuf"})
    assert [r.status_code for r in exports] == [200] * 3 + [429] * 2
    assert 1 <= int(exports[-1].headers["retry-after"]) <= 60
    assert len(stored(engine, project)) == 3 * 2  # app_spans(1): a request and its call


@pytest.mark.postgres
def test_limits_hold_across_two_workers_with_counters_in_the_database(
        tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COACH_RATE_LIMITS", LIMITS)
    engine = open_engine(pg_url)
    try:
        token = add_user(engine, "ada")
        with serving(pg_url, tmp_path / "home", "--workers", "2") as (base, _):
            check_limits(base, token, engine)
        # The counters every worker shared are rows of the database.
        assert counter_rows(engine) >= 4
    finally:
        engine.dispose()


def test_limits_hold_across_two_workers_with_counters_in_redis(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    redis = pytest.importorskip("redis")
    try:
        redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis is not reachable on 127.0.0.1:6379: {exc}")
    monkeypatch.setenv("COACH_RATE_LIMITS", LIMITS)
    monkeypatch.setenv("COACH_REDIS_URL", "redis://127.0.0.1:6379/0")
    db = f"sqlite:///{tmp_path / f'coach-{uuid.uuid4().hex}.db'}"  # its own counters' prefix
    engine = open_engine(db)
    try:
        token = add_user(engine, "ada")
        with serving(db, tmp_path / "home", "--workers", "2") as (base, _):
            check_limits(base, token, engine)
        # Nothing was counted in the database: the counters are Redis's.
        assert counter_rows(engine) == 0
    finally:
        engine.dispose()


def test_a_learner_with_every_turn_slot_taken_gets_429_and_others_do_not(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COACH_TURNS_PER_LEARNER", "2")
    db = f"sqlite:///{tmp_path / 'c.db'}"
    engine = open_engine(db)
    try:
        ada, bob = add_user(engine, "ada"), add_user(engine, "bob")
        slots = TurnSlots(engine, limit=2, ttl=300)
        with serving(db, tmp_path / "home", "--workers", "2") as (base, _):
            with fresh(base, ada) as a, fresh(base, bob) as b:
                thread_a = a.post("/api/threads").json()["thread_id"]
                thread_b = b.post("/api/threads").json()["thread_id"]
            # Two turns of ada's are running (in any worker, or another machine).
            held = [slots.take(1), slots.take(1)]
            assert all(held) and slots.take(1) is None
            with fresh(base, ada) as a:
                refused = a.post(f"/api/threads/{thread_a}/messages", json={"text": "status"})
            assert_retry_after(refused)
            assert "2 turns running" in refused.json()["detail"]
            with fresh(base, bob) as b:  # another learner is not held up
                assert b.post(f"/api/threads/{thread_b}/messages",
                              json={"text": STEP_ONE}).status_code == 200
            for slot in held:
                assert slot is not None
                slots.give_back(slot)
            with fresh(base, ada) as a:
                ok = a.post(f"/api/threads/{thread_a}/messages", json={"text": "status"})
            assert ok.status_code == 200, ok.text
        assert slots.running(1) == 0 and slots.running(2) == 0  # every turn gave its slot back
    finally:
        engine.dispose()


def test_a_slot_of_a_killed_worker_expires_by_itself(engine: Engine) -> None:
    slots = TurnSlots(engine, limit=1, ttl=0.2)
    assert slots.take(7) is not None and slots.take(7) is None
    with engine.begin() as conn:  # the worker died: its slot's time runs out
        conn.execute(SLOTS.update().values(until=time.time() - 1))
    assert slots.take(7) is not None


def test_database_counters_count_within_a_window_and_start_again_after(engine: Engine) -> None:
    storage = DatabaseStorage(engine)
    assert [storage.incr("k", 60) for _ in range(3)] == [1, 2, 3]
    assert storage.get("k") == 3 and storage.get_expiry("k") > time.time()
    assert storage.incr("short", 0) == 1 and storage.incr("short", 0) == 1  # window over
    storage.clear("k")
    assert storage.get("k") == 0


def test_a_refused_key_is_refused_from_memory_until_its_window_ends(engine: Engine) -> None:
    guard = make_guard(engine, {LIMITS_VARIABLE: "signin=2/second"})
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute",
                 lambda *a: statements.append(a[2]))  # every SQL statement sent
    guard.hit("signin", "10.0.0.1")
    guard.hit("signin", "10.0.0.1")
    with pytest.raises(RateLimited) as first:
        guard.hit("signin", "10.0.0.1")
    assert first.value.retry_after == 1
    counted = len(statements)
    for _ in range(50):  # the flood past the limit
        with pytest.raises(RateLimited, match=r"at most 2 per 1 second\); try again in 1 s"):
            guard.hit("signin", "10.0.0.1")
        with pytest.raises(RateLimited):
            guard.check("signin", "10.0.0.1")
    assert len(statements) == counted  # refused without touching the database
    guard.hit("signin", "10.0.0.2")  # another address is counted as before
    assert len(statements) > counted
    time.sleep(1.1)  # the window ends: the address is counted again, from a fresh window
    guard.hit("signin", "10.0.0.1")
    assert ("signin", "10.0.0.1") not in guard.refused


def test_threads_are_listed_a_page_at_a_time_with_a_stable_cursor(tmp_path: Path) -> None:
    from tests.webserver import running

    with running(f"sqlite:///{tmp_path / 'w.db'}", tmp_path / "home") as srv:
        c = srv.client(srv.learner("pat"))
        made = [c.post("/api/threads").json()["thread_id"] for _ in range(7)]
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
            page = c.get("/api/threads", params=params).json()
            seen += [t["thread_id"] for t in page["threads"]]
            pages += 1
            cursor = page["next_cursor"]
            if cursor is None:
                break
            if pages == 1:  # a thread created meanwhile does not shift the pages after
                c.post("/api/threads")
        assert pages == 3 and sorted(seen) == sorted(made) and len(seen) == len(set(seen))
        assert c.get("/api/threads", params={"cursor": "garbage!"}).status_code == 422
        assert c.get("/api/threads", params={"limit": 0}).status_code == 422
        default = c.get("/api/threads").json()
        assert len(default["threads"]) == 8 and default["next_cursor"] is None
        assert json.loads(json.dumps(default))  # plain JSON


class Outage:
    """The database refusing chosen statements while `on` is set (what a server restart
    does to a turn that ends mid-restart), at the DB-API boundary."""

    def __init__(self, engine: Engine, prefix: str):
        self.on = threading.Event()

        def refuse(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            if self.on.is_set() and statement.lstrip().upper().startswith(prefix):
                raise OperationalError(statement, None, Exception("server closed the connection"))

        event.listen(engine, "before_cursor_execute", refuse)


def eventually(check: Callable[[], bool], within: float = 10) -> bool:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_a_lease_the_database_could_not_free_is_freed_once_it_is_back(engine: Engine) -> None:
    threads = Threads(engine, ensure_user(engine, "ada"))
    thread = threads.open()
    outage = Outage(engine, "UPDATE THREADS")
    with pytest.raises(SQLAlchemyError):
        with threads.lease(thread):
            outage.on.set()  # the turn ends while the database is away
    assert lease_of(engine, thread) is not None  # not freed: the thread would stay busy
    outage.on.clear()
    assert eventually(lambda: lease_of(engine, thread) is None)
    with Threads(engine, ensure_user(engine, "ada")).lease(thread):  # another session's turn
        pass


def test_a_turn_slot_the_database_could_not_free_is_freed_once_it_is_back(
        engine: Engine) -> None:
    slots = TurnSlots(engine, limit=1, ttl=300)
    slot = slots.take(7)
    assert slot is not None
    outage = Outage(engine, "DELETE FROM TURN_SLOTS")
    outage.on.set()
    slots.give_back(slot)  # no error: the turn's answer does not depend on it
    assert slots.running(7) == 1
    outage.on.clear()
    assert eventually(lambda: slots.running(7) == 0)
    assert slots.take(7) is not None


def lease_of(engine: Engine, thread_id: str) -> str | None:
    with session_scope(engine) as s:
        found = s.get(Thread, thread_id)
        assert found is not None
        s.refresh(found)
        return found.lease_owner
