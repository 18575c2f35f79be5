"""Running one eval case: its own database, app, repository and tracer."""

from __future__ import annotations

import json
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from ipaddress import ip_network
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlmodel import select

from agent.demo import Page, local_app, make_repo, script
from agent.session import Coach, CoachError, TurnResult
from evals.dataset import Case
from evals.git_server import git_http
from evals.repo_actions import act, change_files
from memory.checkpoints import open_checkpointer
from memory.models import (
    Evidence,
    LedgerEntry,
    Lesson,
    PostmortemVersion,
    Project,
    TranscriptEntry,
)
from memory.store import open_engine, session_scope
from seam.model import Model
from telemetry.budget import Budget
from tools import ToolContext

PAGES: dict[str, Page] = {
    "/": (200, {}, b"<html><head><title>My tool</title></head><body>It works.</body></html>"),
    "/streamlit": (200, {}, b"<html><head><title>Streamlit</title></head><body><noscript>"
                   b"You need to enable JavaScript to run this app.</noscript>"
                   b"<script src='/static/js/main.streamlit.js'></script></body></html>"),
    "/to-metadata": (302, {"Location": "http://169.254.169.254/latest/meta-data/"}, b""),
    "/to-private": (302, {"Location": "http://10.0.0.1/admin"}, b""),
    "/broken": (500, {}, b"internal error"),
}


@dataclass
class Outcome:
    """What a case left behind, for the graders."""

    case: Case
    results: list[TurnResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    spans: list[ReadableSpan] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)
    latency_s: float = 0.0
    tokens: int = 0
    cost_usd: Decimal | None = Decimal(0)
    # The case's ledger rows, as plain fields, for the learner's own ledger.
    ledger: list[dict[str, Any]] = field(default_factory=list)

    @property
    def replies(self) -> list[str]:
        return [r.reply for r in self.results]


def _seed_spend(engine: Any, user_id: int, amount: float) -> None:
    if amount:
        with session_scope(engine) as s:
            s.add(LedgerEntry(user_id=user_id, model="seed", purpose="eval-seed",
                              cost_usd=Decimal(str(amount)), created_at=datetime.now(UTC)))


PREFIX = {"build": [0], "deploy": [0, 1], "harden": [0, 1, 2], "postmortem": [0, 1, 2, 3, 4],
          "repeat": [0, 1, 2, 3, 4, 6]}


def messages_of(case: Case, url: str, repo: str, git_url: str = "") -> list[str]:
    """The case's messages, after the demo learner's answers that reach `start_at`."""
    demo = [message for _, message in script(repo, url)]
    prefix = [demo[i] for i in PREFIX[case.start_at]] if case.start_at else []
    return prefix + [fill(m, url, repo, git_url) for m in case.messages]


def fill(message: str, url: str, repo: str, git_url: str = "") -> str:
    return (message.replace("{url}", url).replace("{app}", url).replace("{repo}", repo)
            .replace("{git_url}", git_url)
            .replace("{private_git_url}", git_url.replace("/repo.git", "/private/repo.git"))
            .replace("{big}", "x" * 40_000))


def snapshot(engine: Any, thread_id: str | None) -> dict[str, Any]:
    """The store after a case: projects with evidence and lessons, gate decisions."""
    with session_scope(engine) as s:
        projects = s.exec(select(Project).order_by(Project.id)).all()  # type: ignore[arg-type]
        out: dict[str, Any] = {"projects": [], "gates": [], "turns": 0}
        for p in projects:
            evidence = s.exec(select(Evidence).where(Evidence.project_id == p.id)
                              .order_by(Evidence.id)).all()  # type: ignore[arg-type]
            lessons = s.exec(select(Lesson).where(Lesson.project_id == p.id)).all()
            versions = s.exec(select(PostmortemVersion).where(
                PostmortemVersion.project_id == p.id).order_by(PostmortemVersion.version)).all()  # type: ignore[arg-type]
            out["projects"].append({
                **p.model_dump(), "evidence": [{"kind": e.kind, "ok": e.ok,
                                                "verified": e.verified, **e.details}
                                               for e in evidence],
                "lessons": [{"kind": le.kind, "text": le.text} for le in lessons],
                "postmortems": [{"version": v.version, "source": v.source, "words": v.words,
                                 "text": v.text, "report": v.report} for v in versions]})
        entries = s.exec(select(TranscriptEntry).where(TranscriptEntry.thread_id == thread_id)
                         ).all() if thread_id else []
        out["turns"] = len({e.turn for e in entries})
        uses = {b["id"]: b for e in entries for b in e.content if b.get("type") == "tool_use"}
        for e in entries:
            for b in e.content:
                use = uses.get(b.get("tool_use_id", ""))
                if use and use["name"] == "advance_step":
                    result = json.loads(b["content"])
                    out["gates"].append({"step": result.get("from_step", result.get("step")),
                                         "passed": bool(result.get("ok"))})
        return out


def run_case(case: Case, model: Model, budget: Budget | None = None) -> Outcome:
    """Run a case's messages through a real Coach and keep what it left behind. A paid run
    passes the learner's `budget`: its calls are then held to it and recorded as `eval`."""
    outcome = Outcome(case)
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with tempfile.TemporaryDirectory(prefix="coach-eval-") as tmp, local_app(PAGES) as url, \
            ExitStack() as served:
        repo = str(make_repo(Path(tmp)))
        change_files(Path(repo), case.repo_files)
        git_url = ""
        if any("git_url}" in m for m in case.messages):
            git_url = served.enter_context(git_http({"/repo.git": Path(repo)})) + "/repo.git"
        db = f"sqlite:///{Path(tmp) / 'eval.db'}"
        engine = open_engine(db)

        def tools(user_id: int, thread_id: str) -> ToolContext:
            # Only the case's own app is reachable; every other internal address stays refused.
            return ToolContext(engine, user_id, thread_id, fetch_timeout=5.0,
                               extra_allowed_networks=[ip_network("127.0.0.1/32")])

        def coach(saver: Any) -> Coach:
            limit = Decimal(str(case.budget_usd)) if case.budget_usd is not None else None
            return Coach(engine, saver, user="learner", model=model, tool_context=tools,
                         tracer_provider=provider, budget_usd=limit,
                         budget=budget if limit is None else None,
                         purpose="eval" if budget is not None else "coach")

        started = time.perf_counter()
        thread = None
        try:
            with open_checkpointer(db) as saver:
                session = coach(saver)
                _seed_spend(engine, session.user_id, case.spent_usd)
                thread = session.thread()
                for message in messages_of(case, url, repo, git_url):
                    if message == "RESUME":
                        session = coach(saver)
                        continue
                    if act(message, engine, Path(repo), case.fix_files):
                        continue
                    try:
                        outcome.results.append(session.turn(thread, message))
                    except CoachError as exc:
                        outcome.errors.append(str(exc))
            outcome.latency_s = time.perf_counter() - started
            with session_scope(engine) as s:
                rows = s.exec(select(LedgerEntry).where(LedgerEntry.purpose != "eval-seed")).all()
                outcome.tokens = sum(r.input_tokens + r.output_tokens for r in rows)
                outcome.ledger = [r.model_dump(exclude={"id", "user_id"}) for r in rows]
                costs = [r.cost_usd for r in rows]
                outcome.cost_usd = None if any(c is None for c in costs) else \
                    sum((c or Decimal(0) for c in costs), Decimal(0))
            outcome.state = snapshot(engine, thread)
        finally:
            engine.dispose()
    outcome.spans = list(exporter.get_finished_spans())
    return outcome
