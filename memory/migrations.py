"""Explicit, append-only schema migrations.

Each migration is a named function; applied names are recorded in
`schema_migrations`. Never edit or reorder a migration that has shipped: add a new
one. Table shapes are written out here (not taken from `memory.models`) so that an
old migration keeps meaning what it meant when it shipped.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    inspect,
    text,
)
from sqlalchemy.engine import Connection

Migration = Callable[[Connection], None]


def _id() -> Column:
    return Column("id", Integer, primary_key=True, autoincrement=True)


def _at(name: str) -> Column:
    return Column(name, DateTime(timezone=True), nullable=False)


def m001_initial(conn: Connection) -> None:
    md = MetaData()
    Table(
        "users", md, _id(),
        Column("name", String(200), nullable=False, unique=True, index=True),
        Column("token_hash", String(128)),
        _at("created_at"),
    )
    Table(
        "threads", md,
        Column("id", String(64), primary_key=True),
        Column("user_id", Integer, ForeignKey("users.id"), nullable=False, index=True),
        Column("project_id", Integer),
        Column("turns", Integer, nullable=False),
        _at("created_at"), _at("updated_at"),
    )
    Table(
        "projects", md, _id(),
        Column("user_id", Integer, ForeignKey("users.id"), nullable=False, index=True),
        Column("title", String(300), nullable=False),
        *[Column(c, Text, nullable=False) for c in (
            "problem", "audience", "personal_context", "success_criteria", "repo", "usage_note")],
        Column("mvp_scope", JSON, nullable=False),
        Column("capabilities", JSON, nullable=False),
        Column("difficulty", Integer, nullable=False),
        Column("step", String(20), nullable=False),
        Column("previous_project_id", Integer),
        _at("created_at"), _at("updated_at"),
    )
    Table(
        "evidence", md, _id(),
        Column("project_id", Integer, ForeignKey("projects.id"), nullable=False, index=True),
        Column("kind", String(30), nullable=False),
        Column("details", JSON, nullable=False),
        Column("verified", Boolean, nullable=False),
        Column("ok", Boolean, nullable=False),
        _at("checked_at"),
    )
    Table(
        "lessons", md, _id(),
        Column("project_id", Integer, ForeignKey("projects.id"), nullable=False, index=True),
        Column("kind", String(20), nullable=False),
        Column("text", Text, nullable=False),
        _at("created_at"),
    )
    Table(
        "transcript", md, _id(),
        Column("thread_id", String(64), ForeignKey("threads.id"), nullable=False, index=True),
        Column("turn", Integer, nullable=False),
        Column("seq", Integer, nullable=False),
        Column("role", String(20), nullable=False),
        Column("content", JSON, nullable=False),
        _at("created_at"),
        UniqueConstraint("thread_id", "turn", "seq"),
    )
    Table(
        "step_transitions", md, _id(),
        Column("project_id", Integer, ForeignKey("projects.id"), nullable=False, index=True),
        Column("from_step", String(20), nullable=False),
        Column("to_step", String(20), nullable=False),
        Column("thread_id", String(64)),
        _at("at"),
    )
    Table(
        "postmortems", md, _id(),
        Column("project_id", Integer, ForeignKey("projects.id"), nullable=False, index=True),
        Column("version", Integer, nullable=False),
        Column("source", String(20), nullable=False),
        Column("text", Text, nullable=False),
        Column("words", Integer, nullable=False),
        Column("report", JSON, nullable=False),
        _at("created_at"),
        UniqueConstraint("project_id", "version"),
    )
    tokens = ("input_tokens", "output_tokens", "cache_read_input_tokens",
              "cache_creation_input_tokens")
    Table(
        "ledger", md, _id(),
        Column("user_id", Integer, ForeignKey("users.id"), nullable=False, index=True),
        Column("thread_id", String(64), index=True),
        Column("project_id", Integer),
        Column("step", String(20)),
        Column("purpose", String(30), nullable=False),
        Column("model", String(100), nullable=False),
        *[Column(c, Integer, nullable=False) for c in (
            *tokens, "cache_creation_5m_input_tokens", "cache_creation_1h_input_tokens")],
        Column("service_tier", String(20)),
        Column("inference_geo", String(20)),
        Column("request_id", String(100)),
        Column("trace_id", String(32)),
        Column("span_id", String(16)),
        Column("latency_ms", Integer, nullable=False),
        Column("status", String(20), nullable=False),
        Column("error", Text),
        Column("cost_usd", Numeric(20, 10)),
        Column("estimated", Boolean, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, index=True),
    )
    Table(
        "project_usage", md, _id(),
        Column("project_id", Integer, ForeignKey("projects.id"), nullable=False, index=True),
        Column("model", String(100), nullable=False),
        *[Column(c, Integer, nullable=False) for c in tokens],
        Column("requests", Integer, nullable=False),
        Column("period", String(20)),
        Column("cost_usd", Numeric(20, 10)),
        _at("created_at"),
    )
    md.create_all(conn)


def m002_thread_lease(conn: Connection) -> None:
    """Threads get a lease so two processes cannot run turns on one thread at once."""
    conn.execute(text("ALTER TABLE threads ADD COLUMN lease_owner VARCHAR(64)"))
    conn.execute(text("ALTER TABLE threads ADD COLUMN lease_until TIMESTAMP WITH TIME ZONE"))


def m003_spans(conn: Connection) -> None:
    """The local span store: the coach's own finished spans, for `coach traces`."""
    md = MetaData()
    Table(
        "spans", md, _id(),
        Column("trace_id", String(32), nullable=False, index=True),
        Column("span_id", String(16), nullable=False),
        Column("parent_id", String(16)),
        Column("name", String(200), nullable=False),
        Column("kind", String(20), nullable=False),
        Column("start_time", DateTime(timezone=True), nullable=False, index=True),
        Column("end_time", DateTime(timezone=True), nullable=False),
        Column("duration_us", BigInteger, nullable=False),
        Column("status", String(10), nullable=False),
        Column("status_message", Text),
        Column("attributes", JSON, nullable=False),
        # Scoping: set on spans that name their learner and thread (the turn's root).
        Column("user_id", Integer, index=True),
        Column("thread_id", String(64)),
    )
    md.create_all(conn)


def m004_web_sessions(conn: Connection) -> None:
    """`coach serve`: browser sessions and one-time sign-in links, both stored hashed.

    A session lives in the database (not in a worker's memory) so that any worker
    of a multi-process server can check it.
    """
    md = MetaData()
    # The existing users table, named only so the foreign keys can point at it.
    Table("users", md, Column("id", Integer, primary_key=True))
    sessions = Table(
        "web_sessions", md,
        Column("id", String(64), primary_key=True),  # sha256 of the cookie's secret
        Column("user_id", Integer, ForeignKey("users.id"), nullable=False, index=True),
        Column("csrf_token", String(64), nullable=False),
        _at("created_at"), _at("expires_at"),
    )
    links = Table(
        "signin_links", md,
        Column("id", String(64), primary_key=True),  # sha256 of the link's code
        Column("user_id", Integer, ForeignKey("users.id"), nullable=False, index=True),
        _at("created_at"), _at("expires_at"),
        Column("used_at", DateTime(timezone=True)),
    )
    md.create_all(conn, tables=[sessions, links])
    # Every API request looks its caller up by token hash.
    conn.execute(text("CREATE INDEX ix_users_token_hash ON users (token_hash)"))


def m005_postmortem_batches(conn: Connection) -> None:
    """Message Batches of post-mortem drafts, so their results survive a crash."""
    md = MetaData()
    Table("users", md, Column("id", Integer, primary_key=True))
    batches = Table(
        "postmortem_batches", md,
        Column("id", Integer, primary_key=True),
        Column("batch_id", String(100), nullable=False, unique=True),
        Column("user_id", Integer, ForeignKey("users.id"), nullable=False, index=True),
        Column("model", String(100), nullable=False),
        Column("requests", JSON, nullable=False),
        Column("status", String(20), nullable=False),
        _at("created_at"),
        Column("collected_at", DateTime(timezone=True)),
    )
    md.create_all(conn, tables=[batches])


def m006_portfolio(conn: Connection) -> None:
    """What the learner published, share links (hashed), deployment re-checks
    and the lease row that keeps the scheduled re-check to one process per tick."""
    md = MetaData()
    Table("users", md, Column("id", Integer, primary_key=True))
    Table("projects", md, Column("id", Integer, primary_key=True))
    publications = Table(
        "publications", md, _id(),
        Column("project_id", Integer, ForeignKey("projects.id"), nullable=False, index=True),
        Column("field", String(40), nullable=False),
        _at("created_at"),
        UniqueConstraint("project_id", "field"),
    )
    links = Table(
        "share_links", md,
        Column("id", String(64), primary_key=True),  # sha256 of the slug
        Column("user_id", Integer, ForeignKey("users.id"), nullable=False, index=True),
        _at("created_at"),
        Column("revoked_at", DateTime(timezone=True)),
    )
    runs = Table(
        "recheck_runs", md, _id(),
        Column("trigger", String(20), nullable=False),
        Column("owner", String(64), nullable=False),
        Column("started_at", DateTime(timezone=True), nullable=False, index=True),
        Column("finished_at", DateTime(timezone=True)),
        Column("checked", Integer, nullable=False),
        Column("down", Integer, nullable=False),
    )
    checks = Table(
        "deployment_rechecks", md, _id(),
        Column("project_id", Integer, ForeignKey("projects.id"), nullable=False, index=True),
        Column("run_id", Integer, ForeignKey("recheck_runs.id")),
        Column("url", String(2000), nullable=False),
        Column("ok", Boolean, nullable=False),
        Column("status_code", Integer),
        Column("latency_ms", Integer),
        Column("reason", String, nullable=False),
        Column("checked_at", DateTime(timezone=True), nullable=False, index=True),
        Column("notified_at", DateTime(timezone=True)),
    )
    leases = Table(
        "schedule_leases", md,
        Column("name", String(40), primary_key=True),
        Column("owner", String(64)),
        Column("lease_until", DateTime(timezone=True)),
        Column("last_run_at", DateTime(timezone=True)),
    )
    md.create_all(conn, tables=[publications, links, runs, checks, leases])


def m008_ingest(conn: Connection) -> None:
    """#13: the learner's own traces (`POST /v1/traces`): per-project ingest tokens (sha256)
    and the spans received, kept small."""
    md = MetaData()
    Table("projects", md, Column("id", Integer, primary_key=True))
    tokens = Table(
        "ingest_tokens", md,
        Column("project_id", Integer, ForeignKey("projects.id"), primary_key=True),
        Column("token_hash", String(64), nullable=False, unique=True, index=True),
        _at("created_at"),
    )
    spans = Table(
        "received_spans", md, _id(),
        Column("project_id", Integer, ForeignKey("projects.id"), nullable=False, index=True),
        Column("trace_id", String(32), nullable=False),
        Column("span_id", String(16), nullable=False),
        Column("name", String(200), nullable=False),
        Column("service", String(200), nullable=False),
        Column("scope", String(200), nullable=False),
        _at("start_time"), _at("end_time"),
        Column("model", String(100)),
        Column("provider", String(50)),
        *[Column(c, Integer, nullable=False) for c in (
            "input_tokens", "output_tokens", "cache_read_input_tokens",
            "cache_creation_input_tokens")],
        Column("attributes", JSON, nullable=False),
        Column("received_at", DateTime(timezone=True), nullable=False, index=True),
    )
    md.create_all(conn, tables=[tokens, spans])


def m007_rate_limits(conn: Connection) -> None:
    """Rate-limit counters and running-turn slots, where every worker (and machine) sharing
    the database sees them (Redis keeps the counters instead when COACH_REDIS_URL is set)."""
    md = MetaData()
    counters = Table(
        "rate_counters", md,
        Column("key", String(200), primary_key=True),
        Column("hits", Integer, nullable=False),
        Column("expires_at", Float, nullable=False),  # epoch seconds: the window's end
    )
    slots = Table(
        "turn_slots", md,
        Column("id", String(32), primary_key=True),
        Column("user_id", Integer, nullable=False, index=True),
        Column("until", Float, nullable=False),  # a crashed worker's slot expires by itself
    )
    md.create_all(conn, tables=[counters, slots])


def m009_tool_calls(conn: Connection) -> None:
    """#16: the tool calls whose effects were committed, keyed by the model's tool_use id,
    so a call run again (a resumed or retried turn) is answered from here, not repeated."""
    md = MetaData()
    Table("users", md, Column("id", Integer, primary_key=True))
    calls = Table(
        "tool_calls", md,
        Column("user_id", Integer, ForeignKey("users.id"), primary_key=True),
        Column("call_id", String(200), primary_key=True),
        Column("tool", String(60), nullable=False),
        Column("thread_id", String(64)),
        Column("ok", Boolean, nullable=False),
        Column("result", JSON, nullable=False),
        _at("created_at"),
    )
    md.create_all(conn, tables=[calls])


MIGRATIONS: list[Migration] = [m001_initial, m002_thread_lease, m003_spans, m004_web_sessions,
                               m005_postmortem_batches, m006_portfolio, m007_rate_limits,
                               m008_ingest, m009_tool_calls]


def _ensure_table(conn: Connection) -> None:
    md = MetaData()
    Table(
        "schema_migrations", md,
        Column("name", String(100), primary_key=True),
        Column("applied_at", DateTime, nullable=False),
    )
    md.create_all(conn)


def applied(engine: Engine) -> list[str]:
    if not inspect(engine).has_table("schema_migrations"):
        return []
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(text("SELECT name FROM schema_migrations"))]


def _lock(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        # Two processes starting at once must not both create a table or apply a migration.
        conn.execute(text("SELECT pg_advisory_xact_lock(7400101)"))


def migrate(engine: Engine, migrations: list[Migration] | None = None) -> list[str]:
    """Apply pending migrations in order; returns the names applied now."""
    done_now: list[str] = []
    with engine.begin() as conn:
        _lock(conn)
        _ensure_table(conn)
    for migration in MIGRATIONS if migrations is None else migrations:
        with engine.begin() as conn:
            _lock(conn)
            seen = conn.execute(
                text("SELECT 1 FROM schema_migrations WHERE name = :n"),
                {"n": migration.__name__},
            ).first()
            if seen:
                continue
            migration(conn)
            conn.execute(
                text("INSERT INTO schema_migrations (name, applied_at) VALUES (:n, :t)"),
                {"n": migration.__name__, "t": datetime.now(UTC).replace(tzinfo=None)},
            )
            done_now.append(migration.__name__)
    return done_now
