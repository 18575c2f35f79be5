"""The coach's records: learners, projects, evidence, lessons, transcript, ledger, tool calls.

These SQLModel classes describe the schema that `memory.migrations` builds; a test
keeps the two in step.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Numeric, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


def _json(**kw: Any) -> Any:
    return Field(default_factory=list, sa_column=Column(JSON, nullable=False), **kw)


class User(SQLModel, table=True):
    __tablename__ = "users"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, max_length=200)
    token_hash: str | None = Field(default=None, max_length=128, index=True)
    created_at: datetime = Field(default_factory=utcnow)


class Thread(SQLModel, table=True):
    __tablename__ = "threads"
    id: str = Field(primary_key=True, max_length=64)
    user_id: int = Field(foreign_key="users.id", index=True)
    project_id: int | None = Field(default=None)
    turns: int = 0
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    # A lease, so that two processes never run turns on one thread at once.
    lease_owner: str | None = Field(default=None, max_length=64)
    lease_until: datetime | None = None


class Project(SQLModel, table=True):
    __tablename__ = "projects"
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    title: str = Field(max_length=300)
    problem: str = ""
    audience: str = ""
    personal_context: str = ""
    success_criteria: str = ""
    repo: str = ""
    mvp_scope: list[str] = _json()
    usage_note: str = ""
    capabilities: list[str] = _json()
    difficulty: int = 0
    step: str = Field(default="problem", max_length=20)
    previous_project_id: int | None = Field(default=None)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class Evidence(SQLModel, table=True):
    __tablename__ = "evidence"
    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="projects.id", index=True)
    kind: str = Field(max_length=30)
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # verified: the coach checked it itself (a fetch, an audit); otherwise the learner said so.
    verified: bool = False
    ok: bool = True
    checked_at: datetime = Field(default_factory=utcnow)


class Lesson(SQLModel, table=True):
    __tablename__ = "lessons"
    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="projects.id", index=True)
    kind: str = Field(max_length=20)
    text: str
    created_at: datetime = Field(default_factory=utcnow)


class TranscriptEntry(SQLModel, table=True):
    """Append-only: every message of every turn, in Anthropic Messages form."""

    __tablename__ = "transcript"
    __table_args__ = (UniqueConstraint("thread_id", "turn", "seq"),)
    id: int | None = Field(default=None, primary_key=True)
    thread_id: str = Field(foreign_key="threads.id", index=True, max_length=64)
    turn: int
    seq: int
    role: str = Field(max_length=20)
    content: list[dict[str, Any]] = _json()
    created_at: datetime = Field(default_factory=utcnow)


class StepTransition(SQLModel, table=True):
    __tablename__ = "step_transitions"
    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="projects.id", index=True)
    from_step: str = Field(max_length=20)
    to_step: str = Field(max_length=20)
    thread_id: str | None = Field(default=None, max_length=64)
    at: datetime = Field(default_factory=utcnow)


class PostmortemVersion(SQLModel, table=True):
    __tablename__ = "postmortems"
    __table_args__ = (UniqueConstraint("project_id", "version"),)
    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="projects.id", index=True)
    version: int
    source: str = Field(max_length=20)  # "submission" or "draft"
    text: str
    words: int
    report: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class LedgerEntry(SQLModel, table=True):
    """One row per model call the coach itself makes."""

    __tablename__ = "ledger"
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    thread_id: str | None = Field(default=None, index=True, max_length=64)
    project_id: int | None = None
    step: str | None = Field(default=None, max_length=20)
    purpose: str = Field(default="coach", max_length=30)
    model: str = Field(max_length=100)
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_creation_5m_input_tokens: int = 0
    cache_creation_1h_input_tokens: int = 0
    service_tier: str | None = Field(default=None, max_length=20)
    inference_geo: str | None = Field(default=None, max_length=20)
    request_id: str | None = Field(default=None, max_length=100)
    trace_id: str | None = Field(default=None, max_length=32)
    span_id: str | None = Field(default=None, max_length=16)
    latency_ms: int = 0
    status: str = Field(default="ok", max_length=20)
    error: str | None = None
    # None means the price is unknown, which is not the same as free.
    cost_usd: Decimal | None = Field(default=None, sa_column=Column(Numeric(20, 10)))
    estimated: bool = False
    created_at: datetime = Field(default_factory=utcnow, index=True)


class ProjectUsage(SQLModel, table=True):
    """The learner's own project's model usage, kept apart from the coach's spend."""

    __tablename__ = "project_usage"
    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="projects.id", index=True)
    model: str = Field(max_length=100)
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    requests: int = 1
    period: str | None = Field(default=None, max_length=20)
    cost_usd: Decimal | None = Field(default=None, sa_column=Column(Numeric(20, 10)))
    created_at: datetime = Field(default_factory=utcnow)


class StoredSpan(SQLModel, table=True):
    """A finished span of the coach's own traces (the local span store)."""

    __tablename__ = "spans"
    id: int | None = Field(default=None, primary_key=True)
    trace_id: str = Field(index=True, max_length=32)
    span_id: str = Field(max_length=16)
    parent_id: str | None = Field(default=None, max_length=16)
    name: str = Field(max_length=200)
    kind: str = Field(max_length=20)
    start_time: datetime = Field(index=True)
    end_time: datetime
    duration_us: int = Field(sa_column=Column(BigInteger, nullable=False))
    status: str = Field(max_length=10)  # "unset", "ok" or "error"
    status_message: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict,
                                       sa_column=Column(JSON, nullable=False))
    # Scoping: set on spans that name their learner and thread (the turn's root).
    user_id: int | None = Field(default=None, index=True)
    thread_id: str | None = Field(default=None, max_length=64)


class WebSession(SQLModel, table=True):
    """A signed-in browser: the cookie holds a secret, the row its sha256."""

    __tablename__ = "web_sessions"
    id: str = Field(primary_key=True, max_length=64)
    user_id: int = Field(foreign_key="users.id", index=True)
    # Double-submit CSRF token: cookie-authenticated writes must echo it in a header.
    csrf_token: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime


class SigninLink(SQLModel, table=True):
    """A one-time sign-in link (`coach serve` prints one for the local learner)."""

    __tablename__ = "signin_links"
    id: str = Field(primary_key=True, max_length=64)
    user_id: int = Field(foreign_key="users.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    used_at: datetime | None = None


class PostmortemBatch(SQLModel, table=True):
    """A Message Batch of post-mortem drafts, kept until its results are collected, so a
    later run (or `coach postmortem batch --resume`) picks them up after a crash."""

    __tablename__ = "postmortem_batches"
    id: int | None = Field(default=None, primary_key=True)
    batch_id: str = Field(max_length=100, unique=True)
    user_id: int = Field(foreign_key="users.id", index=True)  # who submitted it
    model: str = Field(max_length=100)
    # custom_id → {"project_id", "user_id"}: what each result is matched back to.
    requests: dict[str, Any] = Field(default_factory=dict,
                                     sa_column=Column(JSON, nullable=False))
    status: str = Field(default="submitted", max_length=20)  # submitted | collected
    created_at: datetime = Field(default_factory=utcnow)
    collected_at: datetime | None = None


class Publication(SQLModel, table=True):
    """A field of a project the learner made public (nothing is public by default)."""

    __tablename__ = "publications"
    __table_args__ = (UniqueConstraint("project_id", "field"),)
    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="projects.id", index=True)
    field: str = Field(max_length=40)
    created_at: datetime = Field(default_factory=utcnow)


class ShareLink(SQLModel, table=True):
    """A read-only link to the learner's published portfolio; the row holds the slug's
    sha256, so the database alone does not give anyone a working link."""

    __tablename__ = "share_links"
    id: str = Field(primary_key=True, max_length=64)
    user_id: int = Field(foreign_key="users.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)
    revoked_at: datetime | None = None


class RecheckRun(SQLModel, table=True):
    """One pass of `coach recheck` (by hand or on the schedule)."""

    __tablename__ = "recheck_runs"
    id: int | None = Field(default=None, primary_key=True)
    trigger: str = Field(max_length=20)  # "schedule" or "command"
    owner: str = Field(max_length=64)
    started_at: datetime = Field(default_factory=utcnow, index=True)
    finished_at: datetime | None = None
    checked: int = 0
    down: int = 0


class DeploymentRecheck(SQLModel, table=True):
    """A later fetch of a recorded deployment: the history behind "live as of" / "down since"."""

    __tablename__ = "deployment_rechecks"
    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="projects.id", index=True)
    run_id: int | None = Field(default=None, foreign_key="recheck_runs.id")
    url: str = Field(max_length=2000)
    ok: bool
    status_code: int | None = None
    latency_ms: int | None = None
    reason: str = ""
    checked_at: datetime = Field(default_factory=utcnow, index=True)
    # Set once the coach has told the learner, so a down site is mentioned once per outage.
    notified_at: datetime | None = None


class ScheduleLease(SQLModel, table=True):
    """One row per scheduled job: whichever process wins the row runs the job this tick."""

    __tablename__ = "schedule_leases"
    name: str = Field(primary_key=True, max_length=40)
    owner: str | None = Field(default=None, max_length=64)
    lease_until: datetime | None = None
    last_run_at: datetime | None = None


class IngestToken(SQLModel, table=True):
    """A project's ingest token for `POST /v1/traces`: one per project, stored as sha256."""

    __tablename__ = "ingest_tokens"
    project_id: int = Field(foreign_key="projects.id", primary_key=True)
    token_hash: str = Field(max_length=64, index=True, unique=True)
    created_at: datetime = Field(default_factory=utcnow)


class ReceivedSpan(SQLModel, table=True):
    """A span the learner's own app sent (OTLP), kept small: what verifies step 4."""

    __tablename__ = "received_spans"
    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="projects.id", index=True)
    trace_id: str = Field(max_length=32)
    span_id: str = Field(max_length=16)
    name: str = Field(max_length=200)
    service: str = Field(max_length=200)
    scope: str = Field(max_length=200)
    start_time: datetime
    end_time: datetime
    model: str | None = Field(default=None, max_length=100)
    provider: str | None = Field(default=None, max_length=50)
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    # The few attributes that say which instrumentation made the span (not the content).
    attributes: dict[str, Any] = Field(default_factory=dict,
                                       sa_column=Column(JSON, nullable=False))
    received_at: datetime = Field(default_factory=utcnow, index=True)


class ToolCall(SQLModel, table=True):
    """A tool call whose effect was committed, keyed by the model's tool_use id and written
    in the effect's own transaction: a turn that runs the same call again (resumed after a
    crash, retried by LangGraph) gets this result back instead of a second effect."""

    __tablename__ = "tool_calls"
    user_id: int = Field(foreign_key="users.id", primary_key=True)
    call_id: str = Field(primary_key=True, max_length=200)
    tool: str = Field(max_length=60)
    thread_id: str | None = Field(default=None, max_length=64)
    ok: bool = True
    result: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
