"""The store on SQLite and PostgreSQL: schema, round trips, constraints, checkpointer."""

from __future__ import annotations

import operator
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from langgraph.checkpoint.postgres import PostgresSaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel, select

from memory.checkpoints import PrunableSqliteSaver, open_checkpointer
from memory.models import (
    Evidence,
    LedgerEntry,
    Lesson,
    Project,
    ProjectUsage,
    Thread,
    TranscriptEntry,
    User,
)
from memory.store import StoreError, open_engine, session_scope


@pytest.fixture
def url(store_url: str) -> str:
    return store_url


@pytest.fixture
def store(url: str) -> Iterator[Engine]:
    eng = open_engine(url)
    yield eng
    eng.dispose()


# ---------------------------------------------------------------- schema and round trip


def test_open_engine_creates_the_schema(store: Engine) -> None:
    tables = set(inspect(store).get_table_names())
    assert set(SQLModel.metadata.tables) <= tables
    assert "schema_migrations" in tables


def test_open_engine_twice_is_harmless(url: str) -> None:
    first = open_engine(url)
    with session_scope(first) as s:
        s.add(User(name="ada"))
    first.dispose()
    second = open_engine(url)
    with session_scope(second) as s:
        assert [u.name for u in s.exec(select(User)).all()] == ["ada"]
    second.dispose()


DETAILS: dict[str, Any] = {
    "cases": 24, "pass_rate": 0.91, "grader": "LLM judge — “strict”", "nested": {"a": [1, None]},
    "ok": True, "none": None,
}
COSTS = [Decimal("0.0123456789"), Decimal("0.0000000001"), Decimal("12345.6789012345"),
         Decimal("0")]


def test_round_trip_of_every_record(store: Engine) -> None:
    with session_scope(store) as s:
        user = User(name="ada", token_hash="h" * 64)
        s.add(user)
        s.flush()
        assert user.id is not None
        uid = user.id
        project = Project(user_id=uid, title="Runbook search", problem="p " * 30,
                          mvp_scope=["search", "cite"], capabilities=["retrieval", "agents"],
                          difficulty=2)
        s.add(project)
        s.add(Thread(id="th-1", user_id=uid))
        s.flush()
        assert project.id is not None
        pid = project.id
        s.add(Evidence(project_id=pid, kind="evals", details=DETAILS, verified=True, ok=False))
        s.add(Lesson(project_id=pid, kind="tradeoff", text="bm25 before embeddings"))
        content = [{"type": "text", "text": "hello"},
                   {"type": "tool_use", "id": "toolu_1", "name": "get_portfolio", "input": {}}]
        s.add(TranscriptEntry(thread_id="th-1", turn=1, seq=0, role="assistant", content=content))
        for i, cost in enumerate(COSTS):
            s.add(LedgerEntry(user_id=uid, thread_id="th-1", model="claude-sonnet-5-5",
                              input_tokens=i, cost_usd=cost, request_id=f"req_{i}"))
        s.add(LedgerEntry(user_id=uid, model="mystery-model", request_id="req_unknown"))
        s.add(ProjectUsage(project_id=pid, model="mystery-model", input_tokens=5))

    with Session(store) as s:
        [got_user] = s.exec(select(User)).all()
        assert (got_user.name, got_user.token_hash) == ("ada", "h" * 64)
        [got_project] = s.exec(select(Project)).all()
        assert got_project.mvp_scope == ["search", "cite"]
        assert got_project.capabilities == ["retrieval", "agents"]
        assert (got_project.step, got_project.difficulty) == ("problem", 2)
        [got_thread] = s.exec(select(Thread)).all()
        assert (got_thread.user_id, got_thread.turns, got_thread.lease_owner) == (uid, 0, None)
        [ev] = s.exec(select(Evidence)).all()
        assert ev.details == DETAILS
        assert (ev.verified, ev.ok) == (True, False)
        [lesson] = s.exec(select(Lesson)).all()
        assert lesson.text == "bm25 before embeddings"
        [entry] = s.exec(select(TranscriptEntry)).all()
        assert entry.content == content
        ledger = {r.request_id: r for r in s.exec(select(LedgerEntry)).all()}
        for i, cost in enumerate(COSTS):
            stored = ledger[f"req_{i}"].cost_usd
            assert isinstance(stored, Decimal)
            assert stored == cost
            assert stored.quantize(Decimal("1e-10")) == cost.quantize(Decimal("1e-10"))
        assert ledger["req_unknown"].cost_usd is None
        [usage] = s.exec(select(ProjectUsage)).all()
        assert usage.cost_usd is None


def test_transcript_rejects_a_duplicate_turn_and_seq(store: Engine) -> None:
    with session_scope(store) as s:
        user = User(name="ada")
        s.add(user)
        s.flush()
        assert user.id is not None
        s.add(Thread(id="th-1", user_id=user.id))
        s.add(TranscriptEntry(thread_id="th-1", turn=1, seq=0, role="user", content=[]))
    with pytest.raises(IntegrityError):
        with session_scope(store) as s:
            s.add(TranscriptEntry(thread_id="th-1", turn=1, seq=0, role="assistant", content=[]))
    with session_scope(store) as s:  # the next seq is fine; the failed one left nothing
        s.add(TranscriptEntry(thread_id="th-1", turn=1, seq=1, role="assistant", content=[]))
    with Session(store) as s:
        got = [(e.turn, e.seq, e.role) for e in s.exec(select(TranscriptEntry)
                                                       .order_by(TranscriptEntry.seq)).all()]
        assert got == [(1, 0, "user"), (1, 1, "assistant")]


def test_foreign_keys_are_enforced(store: Engine) -> None:
    with pytest.raises(IntegrityError):
        with session_scope(store) as s:
            s.add(Project(user_id=4242, title="orphan"))
    with Session(store) as s:
        assert s.exec(select(Project)).all() == []


def test_user_names_are_unique(store: Engine) -> None:
    with session_scope(store) as s:
        s.add(User(name="ada"))
    with pytest.raises(IntegrityError):
        with session_scope(store) as s:
            s.add(User(name="ada"))


# ---------------------------------------------------------------- checkpointer


class Counter(TypedDict):
    items: Annotated[list[str], operator.add]


def tiny_graph(saver: Any) -> Any:
    graph = StateGraph(Counter)
    graph.add_node("tick", lambda state: {"items": ["tick"]})
    graph.add_edge(START, "tick")
    graph.add_edge("tick", END)
    return graph.compile(checkpointer=saver)


def checkpoint_rows(engine: Engine, thread_id: str) -> int:
    with engine.connect() as conn:
        count = conn.execute(text("SELECT count(*) FROM checkpoints WHERE thread_id = :t"),
                             {"t": thread_id}).scalar_one()
        return int(count)


def test_checkpointer_matches_the_backend(url: str, store: Engine) -> None:
    with open_checkpointer(url) as saver:
        if url.startswith("sqlite"):
            assert isinstance(saver, SqliteSaver) and isinstance(saver, PrunableSqliteSaver)
        else:
            assert isinstance(saver, PostgresSaver)
        assert hasattr(saver, "prune")


def test_prune_keeps_only_the_latest_checkpoint(url: str, store: Engine) -> None:
    with open_checkpointer(url) as saver:
        app = tiny_graph(saver)
        one = {"configurable": {"thread_id": "one"}}
        two = {"configurable": {"thread_id": "two"}}
        for _ in range(3):
            app.invoke({"items": []}, one)
        app.invoke({"items": []}, two)
        assert checkpoint_rows(store, "one") > 3
        kept_other = checkpoint_rows(store, "two")
        assert kept_other > 1

        saver.prune(["one"])

        assert checkpoint_rows(store, "one") == 1
        assert checkpoint_rows(store, "two") == kept_other  # other threads untouched
        assert app.get_state(one).values == {"items": ["tick"] * 3}
        app.invoke({"items": []}, one)
        assert app.get_state(one).values == {"items": ["tick"] * 4}


def test_prune_delete_strategy_and_str_argument(url: str, store: Engine) -> None:
    with open_checkpointer(url) as saver:
        app = tiny_graph(saver)
        config = {"configurable": {"thread_id": "gone"}}
        app.invoke({"items": []}, config)
        saver.prune(["gone"], strategy="delete")
        assert checkpoint_rows(store, "gone") == 0
        assert app.get_state(config).values == {}
        if isinstance(saver, PrunableSqliteSaver):
            with pytest.raises(TypeError):
                saver.prune("gone")


def test_checkpoints_survive_reopening(url: str, store: Engine) -> None:
    config = {"configurable": {"thread_id": "persist"}}
    with open_checkpointer(url) as saver:
        tiny_graph(saver).invoke({"items": []}, config)
    with open_checkpointer(url) as saver:
        assert tiny_graph(saver).get_state(config).values == {"items": ["tick"]}


# ---------------------------------------------------------------- SQLite specifics


def test_sqlite_runs_in_wal_mode_with_busy_timeout(engine: Engine) -> None:
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one().lower() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one() >= 5000
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1


def test_sqlite_creates_missing_data_folder(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "coach.db"
    eng = open_engine(f"sqlite:///{path}")
    eng.dispose()
    assert path.is_file()


def test_sqlite_path_under_a_file_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("not a folder")
    with pytest.raises(StoreError) as info:
        open_engine(f"sqlite:///{tmp_path / 'afile' / 'coach.db'}")
    message = str(info.value)
    assert "cannot create the data folder" in message and "afile" in message


def test_sqlite_path_that_is_a_directory_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "coach.db").mkdir()
    with pytest.raises(StoreError, match="cannot write the database file"):
        open_engine(f"sqlite:///{tmp_path / 'coach.db'}")


def test_sqlite_file_that_is_not_a_database_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "coach.db"
    path.write_bytes(b"this is not a sqlite database, just text " * 100)
    with pytest.raises(StoreError, match="cannot open the database"):
        open_engine(f"sqlite:///{path}")


def test_in_memory_sqlite_works() -> None:
    eng = open_engine("sqlite://")
    assert "users" in inspect(eng).get_table_names()
    eng.dispose()


@pytest.mark.parametrize(("bad", "needle"), [
    ("mysql://root@localhost/coach", "unsupported database 'mysql'"),
    ("oracle+oracledb://u:p@h/db", "unsupported database 'oracle'"),
    ("not a url at all", "not a database URL"),
])
def test_unsupported_url_is_a_store_error(bad: str, needle: str) -> None:
    with pytest.raises(StoreError) as info:
        open_engine(bad)
    assert needle in str(info.value)


# ---------------------------------------------------------------- PostgreSQL specifics


def test_unreachable_postgres_is_a_store_error_without_the_password() -> None:
    with pytest.raises(StoreError) as info:
        open_engine("postgresql+psycopg://coach:s3cret-pw@127.0.0.1:1/coach?connect_timeout=3")
    message = str(info.value)
    assert message.startswith("cannot open the database")
    assert "s3cret-pw" not in message
    assert "\n" not in message


@pytest.mark.postgres
def test_plain_postgresql_url_uses_psycopg(pg_url: str) -> None:
    eng = open_engine(pg_url.replace("postgresql+psycopg://", "postgresql://"))
    try:
        assert eng.dialect.driver == "psycopg"
        assert "users" in inspect(eng).get_table_names()
    finally:
        eng.dispose()
