"""Records for portfolio tests: a learner with a done project (every kind of evidence, a
submitted post-mortem, lessons) and private things that must never leave the coach."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import Engine

from memory.models import (
    Evidence,
    LedgerEntry,
    Lesson,
    PostmortemVersion,
    Project,
    ProjectUsage,
    Thread,
    TranscriptEntry,
)
from memory.store import session_scope
from memory.users import ensure_user

DAY = datetime(2026, 11, 3, 9, 30, tzinfo=UTC)
# Strings that must appear in no export and no shared page.
SECRET_TRANSCRIPT = "my-transcript-secret-words"
LOCAL_REPO = "/home/ada/code/handover-helper"
POSTMORTEM = """# Post-mortem

## What worked

Evals **first**, then features. <script>alert('x')</script>

## What didn't

Long notes lost flags. [a link](javascript:alert(1))

## Tradeoffs

Two calls: more latency, better recall.
"""


def seed(engine: Engine, user: str, url: str, *, title: str = "Handover Helper",
         repo: str = "https://github.com/ada/handover-helper") -> int:
    """A done project with every kind of evidence; returns its id."""
    uid = ensure_user(engine, user)
    with session_scope(engine) as s:
        p = Project(user_id=uid, title=title, step="done", difficulty=2,
                    problem="Night-shift nurses lose abnormal vitals in rushed handovers.",
                    audience="ward nurses", personal_context="six years of night shifts",
                    success_criteria="flags 95% of abnormal vitals", repo=repo,
                    mvp_scope=["summarise a note", "flag vitals"],
                    usage_note="ran it on 12 notes", capabilities=["structured_output",
                                                                   "evals_ci"],
                    created_at=DAY, updated_at=DAY)
        s.add(p)
        s.flush()
        pid = p.id
        assert pid is not None
        s.add(Evidence(project_id=pid, kind="deployment", verified=True, ok=True,
                       checked_at=DAY, details={"url": url, "ok": True, "status_code": 200,
                                                "final_url": url, "reason": "HTTP 200"}))
        s.add(Evidence(project_id=pid, kind="evals", checked_at=DAY + timedelta(hours=1),
                       details={"cases": 24, "pass_rate": 0.91, "grader": "exact match"}))
        s.add(Evidence(project_id=pid, kind="ci_gate", checked_at=DAY + timedelta(hours=2),
                       verified=True, details={"provider": "GitHub Actions",
                                               "config_path": ".github/workflows/evals.yml"}))
        s.add(Evidence(project_id=pid, kind="observability", checked_at=DAY,
                       details={"tool": "Langfuse", "link": "https://cloud.langfuse.com/t/1"}))
        s.add(Evidence(project_id=pid, kind="cost_tracking", checked_at=DAY,
                       details={"cost_usd": "0.004", "per": "request"}))
        s.add(Evidence(project_id=pid, kind="audit", verified=True, checked_at=DAY,
                       details={"path": LOCAL_REPO, "commits": 3}))
        s.add(Lesson(project_id=pid, kind="worked", text="evals before features",
                     created_at=DAY))
        s.add(Lesson(project_id=pid, kind="tradeoff", text="two calls, better recall",
                     created_at=DAY))
        s.add(PostmortemVersion(project_id=pid, version=1, source="draft", text="DRAFT ONLY",
                                words=2, created_at=DAY))
        s.add(PostmortemVersion(project_id=pid, version=2, source="submission",
                                text=POSTMORTEM, words=len(POSTMORTEM.split()),
                                created_at=DAY + timedelta(days=1)))
        s.add(ProjectUsage(project_id=pid, model="claude-haiku-5-5", input_tokens=100,
                           output_tokens=10, cost_usd=Decimal("0.0001")))
        thread = Thread(id=f"th-{user}", user_id=uid, project_id=pid)
        s.add(thread)
        s.flush()
        s.add(TranscriptEntry(thread_id=thread.id, turn=1, seq=0, role="user",
                              content=[{"type": "text", "text": SECRET_TRANSCRIPT}]))
        s.add(LedgerEntry(user_id=uid, thread_id=thread.id, model="claude-sonnet-5-5",
                          cost_usd=Decimal("0.123456789")))
    return pid
