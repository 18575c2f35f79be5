"""Schema migrations on SQLite and PostgreSQL: order, idempotence, upgrades, model parity."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Engine,
    Integer,
    Numeric,
    String,
    UniqueConstraint,
    create_engine,
    inspect,
    text,
)
from sqlalchemy.types import TypeDecorator, TypeEngine
from sqlmodel import Session, SQLModel, select

import memory.models  # noqa: F401  (registers every table on SQLModel.metadata)
from memory.migrations import MIGRATIONS, applied, m001_initial, migrate
from memory.models import Thread, User
from memory.store import open_engine

NAMES = [m.__name__ for m in MIGRATIONS]


@pytest.fixture
def url(store_url: str) -> str:
    return store_url


@pytest.fixture
def blank(url: str) -> Iterator[Engine]:
    """An engine on an empty database: nothing migrated yet."""
    eng = create_engine(url)
    assert inspect(eng).get_table_names() == []
    yield eng
    eng.dispose()


def test_names_are_unique_numbered_and_in_order() -> None:
    assert len(NAMES) == len(set(NAMES))
    numbers = []
    for name in NAMES:
        match = re.fullmatch(r"m(\d{3})_[a-z0-9_]+", name)
        assert match, name
        numbers.append(int(match.group(1)))
    assert numbers == list(range(1, len(NAMES) + 1))
    assert NAMES[:2] == ["m001_initial", "m002_thread_lease"]


def test_blank_database_gets_every_migration_in_order(blank: Engine) -> None:
    assert applied(blank) == []
    assert migrate(blank) == NAMES
    assert applied(blank) == NAMES
    with blank.connect() as conn:
        recorded = conn.execute(text(
            "SELECT name, applied_at FROM schema_migrations ORDER BY applied_at, name")).all()
    assert [r[0] for r in recorded] == NAMES
    assert all(r[1] is not None for r in recorded)


def test_second_run_applies_nothing(blank: Engine) -> None:
    assert migrate(blank) == NAMES
    assert migrate(blank) == []
    assert applied(blank) == NAMES
    with blank.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM schema_migrations")).scalar_one() == len(
            NAMES)


def test_upgrade_from_the_initial_schema_keeps_data(blank: Engine) -> None:
    assert migrate(blank, [m001_initial]) == ["m001_initial"]
    columns = {c["name"] for c in inspect(blank).get_columns("threads")}
    assert "lease_owner" not in columns and "lease_until" not in columns
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    with blank.begin() as conn:
        conn.execute(text("INSERT INTO users (id, name, created_at) VALUES (7, 'ada', :t)"),
                     {"t": now})
        conn.execute(text(
            "INSERT INTO threads (id, user_id, project_id, turns, created_at, updated_at)"
            " VALUES ('th-old', 7, NULL, 3, :t, :t)"), {"t": now})

    assert migrate(blank) == NAMES[1:]

    columns = {c["name"] for c in inspect(blank).get_columns("threads")}
    assert {"lease_owner", "lease_until"} <= columns
    with Session(blank) as s:
        [user] = s.exec(select(User)).all()
        assert (user.id, user.name) == (7, "ada")
        thread = s.get(Thread, "th-old")
        assert thread is not None
        assert (thread.user_id, thread.turns, thread.lease_owner, thread.lease_until) == (
            7, 3, None, None)
        thread.lease_owner = "proc-1"
        thread.lease_until = now
        s.add(thread)
        s.commit()
    with Session(blank) as s:
        thread = s.get(Thread, "th-old")
        assert thread is not None and thread.lease_owner == "proc-1"
        assert thread.lease_until is not None
        assert thread.lease_until.replace(tzinfo=None) == now.replace(tzinfo=None)


def test_migrations_build_what_the_models_describe(blank: Engine) -> None:
    migrate(blank)
    insp = inspect(blank)
    assert set(SQLModel.metadata.tables) <= set(insp.get_table_names())
    for table in SQLModel.metadata.sorted_tables:
        db_columns = {c["name"]: c for c in insp.get_columns(table.name)}
        assert set(table.columns.keys()) == set(db_columns), table.name
        for column in table.columns:
            assert db_columns[column.name]["nullable"] == column.nullable, (
                table.name, column.name)
        model_fks = {(fk.parent.name, fk.column.table.name, fk.column.name)
                     for fk in table.foreign_keys}
        db_fks = {(fk["constrained_columns"][0], fk["referred_table"], fk["referred_columns"][0])
                  for fk in insp.get_foreign_keys(table.name)}
        assert model_fks == db_fks, table.name
        model_unique = {tuple(sorted(c.columns.keys())) for c in table.constraints
                        if isinstance(c, UniqueConstraint)}
        model_unique |= {(c.name,) for c in table.columns if c.unique}
        db_unique = {tuple(sorted(u["column_names"])) for u in insp.get_unique_constraints(
            table.name)}
        db_unique |= {tuple(sorted(i["column_names"])) for i in insp.get_indexes(table.name)
                      if i["unique"]}
        assert model_unique <= db_unique, table.name
        model_indexed = {c.name for c in table.columns if c.index}
        db_indexed = {i["column_names"][0] for i in insp.get_indexes(table.name)}
        assert model_indexed <= db_indexed, table.name


KINDS: list[tuple[str, type[TypeEngine]]] = [
    ("bool", Boolean), ("datetime", DateTime), ("json", JSON), ("integer", Integer),
    ("numeric", Numeric), ("string", String),
]


def kind(type_: TypeEngine) -> str:
    if isinstance(type_, TypeDecorator):  # sqlmodel's AutoString wraps String
        type_ = type_.impl_instance
    for name, cls in KINDS:
        if isinstance(type_, cls):
            return name
    return type(type_).__name__


@pytest.mark.postgres
def test_postgres_column_types_match_the_models(pg_url: str) -> None:
    # On SQLite, reflection reports declared-type affinity, which is too loose to compare.
    eng = create_engine(pg_url)
    try:
        migrate(eng)
        insp = inspect(eng)
        for table in SQLModel.metadata.sorted_tables:
            db_types = {c["name"]: c["type"] for c in insp.get_columns(table.name)}
            for column in table.columns:
                assert kind(db_types[column.name]) == kind(column.type), (
                    table.name, column.name, db_types[column.name], column.type)
    finally:
        eng.dispose()


def test_processes_starting_at_once_migrate_once(url: str) -> None:
    """Several engines opening one blank database together: no error, each migration once."""
    results: list[list[str]] = []
    errors: list[BaseException] = []
    starters = 8
    barrier = threading.Barrier(starters)
    engines = [create_engine(url) for _ in range(starters)] if url.startswith("postgresql") else []

    def start(i: int) -> None:
        barrier.wait()
        try:
            if engines:
                results.append(migrate(engines[i]))
            else:
                eng = open_engine(url)  # SQLite needs its pragmas and BEGIN IMMEDIATE
                results.append([])
                eng.dispose()
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(i,)) for i in range(starters)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for eng in engines:
        eng.dispose()
    assert errors == []
    check = create_engine(url)
    try:
        assert applied(check) == NAMES
    finally:
        check.dispose()
    if engines:
        assert sorted(n for r in results for n in r) == sorted(NAMES)
