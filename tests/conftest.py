"""Every test gets its own data folder and a clean environment."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine

from memory.store import open_engine

PG_URL = os.environ.get("COACH_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

CLEARED = ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "COACH_DATABASE_URL", "COACH_MODEL",
           "COACH_USER", "COACH_BUDGET_USD", "COACH_ALLOW_PRIVATE_URLS", "COACH_DEBUG",
           "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
           "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "XDG_DATA_HOME",
           "COACH_REDIS_URL", "COACH_ALLOWED_HOSTS")
# Tests of other things send many requests from 127.0.0.1 as one learner: limits high
# enough never to bite; tests/test_rate_limits.py sets its own.
GENEROUS_LIMITS = ("signin=100000/minute;bad_token=100000/minute;threads=100000/minute;"
                   "messages=100000/minute;ingest=100000/minute")


@pytest.fixture(autouse=True)
def coach_home(tmp_path, monkeypatch) -> Iterator[str]:
    home = tmp_path / "coach-home"
    monkeypatch.setenv("COACH_HOME", str(home))
    for name in CLEARED:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COACH_RATE_LIMITS", GENEROUS_LIMITS)
    monkeypatch.setenv("COACH_TURNS_PER_LEARNER", "1000")
    yield str(home)


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'coach.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, sqlite_url: str) -> str:
    """The test runs once on SQLite and once on PostgreSQL (its own schema)."""
    if request.param == "sqlite":
        return sqlite_url
    pg: str = request.getfixturevalue("pg_url")
    return pg


@pytest.fixture
def store_engine(store_url: str) -> Iterator[Engine]:
    eng = open_engine(store_url)
    yield eng
    eng.dispose()


@pytest.fixture
def engine(sqlite_url) -> Iterator[Engine]:
    eng = open_engine(sqlite_url)
    yield eng
    eng.dispose()


PG_HOW = ("start one with trust auth and a database `test` (e.g. `pg_ctlcluster <version> "
          "main start`), or point COACH_TEST_PG_URL at one")
_PG_SKIPPED: list[str] = []


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def _admin_url() -> str:
    return PG_URL.replace("postgresql+psycopg://", "postgresql://")


def _pg_down() -> str | None:
    import psycopg

    try:
        psycopg.connect(_admin_url(), connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        return " ".join(str(exc).split())
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without a PostgreSQL server, a contributor's laptop runs everything else and says so in
    one line; CI (CI=true) starts the server, so there the tests run and fail loudly."""
    needing = [item for item in items if "pg_url" in getattr(item, "fixturenames", ())
               or item.get_closest_marker("postgres") is not None]
    if not needing or in_ci():
        return
    reason = _pg_down()
    if reason is None:
        return
    config.hook.pytest_deselected(items=needing)
    items[:] = [item for item in items if item not in needing]
    _PG_SKIPPED.append(f"{len(needing)} PostgreSQL tests not run: no server at "
                       f"{_admin_url()} ({reason}); to run them, {PG_HOW}.")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for line in _PG_SKIPPED:
        terminalreporter.write_line(line, yellow=True)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    import uuid

    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        conn = psycopg.connect(_admin_url(), autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:  # in CI: the server .ci/run starts is missing
        pytest.fail(f"PostgreSQL is not reachable at {_admin_url()}: {exc}")
    with conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        try:
            yield f"{PG_URL}?options=-csearch_path%3D{schema}"
        finally:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
