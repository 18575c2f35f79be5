"""The portfolio as one document: the learner's published projects and fields, each claim
labelled with how the coach knows it. Every export format and the share page render it.

Only what is listed here leaves the coach. Never in it: transcripts, the coach's own
model costs (the ledger), ingest tokens, and a repository that is a path on the
learner's disk (only an http(s) repository URL is shown).
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from agent.portfolio.claims import claim, day, how_verified
from agent.portfolio.status import deployment_status
from agent.portfolio.visibility import LESSON, published
from agent.steps import GUIDES
from memory.models import Evidence, Lesson, PostmortemVersion, Project
from memory.vocabulary import DONE

FORMAT = "portfolio-coach/portfolio"
VERSION = 1
_EVIDENCE_FIELDS = {"evals": "evals", "ci_gate": "ci_gate", "observability": "observability",
                    "cost": "cost_tracking"}


def _latest(evidence: list[Evidence], kind: str) -> Evidence | None:
    found = [e for e in evidence if e.kind == kind]
    return max(found, key=lambda e: (e.checked_at.timestamp(), e.id or 0)) if found else None


def _status(project: Project) -> str:
    if project.step == DONE:
        return "done"
    guide = GUIDES[project.step]
    return f"in progress: step {guide.number}/6, {guide.name}"


def project_entry(s: Session, project: Project, fields: set[str]) -> dict[str, Any]:
    """One project with only its public fields (absent keys are not published)."""
    pid = project.id
    assert pid is not None
    out: dict[str, Any] = {"id": pid, "title": project.title, "status": _status(project)}
    if "problem" in fields:
        out["problem"] = project.problem
        out["success_criteria"] = project.success_criteria
    if "audience" in fields:
        out["audience"] = project.audience
    if "why_me" in fields:
        out["why_me"] = project.personal_context
    if "mvp" in fields:
        out["mvp"] = {"features": list(project.mvp_scope), "usage_note": project.usage_note}
    if "repository" in fields and project.repo.startswith(("https://", "http://")):
        out["repository"] = project.repo
    if "capabilities" in fields:
        out["capabilities"] = sorted(project.capabilities)
        out["difficulty"] = project.difficulty
    evidence = list(s.exec(select(Evidence).where(Evidence.project_id == pid)).all())
    if "deployment" in fields and (st := deployment_status(s, pid)) is not None:
        passed = [e for e in evidence if e.kind == "deployment" and e.ok
                  and e.details.get("url") == st.url]
        recorded = max(passed, key=lambda e: (e.checked_at.timestamp(), e.id or 0))
        out["deployment"] = {
            "url": st.url, "live": st.live, "last_verified": day(st.last_verified),
            "last_checked": day(st.last_checked), "down_since": day(st.down_since),
            "status": st.words(), "verified": True, "how": how_verified(recorded)}
    for name, kind in _EVIDENCE_FIELDS.items():
        if name in fields and (e := _latest(evidence, kind)) is not None:
            out[name] = claim(e)
    if "postmortem" in fields:
        submitted = s.exec(select(PostmortemVersion)
                           .where(PostmortemVersion.project_id == pid,
                                  PostmortemVersion.source == "submission")
                           .order_by(col(PostmortemVersion.version).desc())).first()
        if submitted is not None:
            out["postmortem"] = {"version": submitted.version, "words": submitted.words,
                                 "submitted_on": day(submitted.created_at),
                                 "text": submitted.text}
    chosen = {f.removeprefix(LESSON) for f in fields if f.startswith(LESSON)}
    if "lessons" in fields or chosen:
        lessons = s.exec(select(Lesson).where(Lesson.project_id == pid)
                         .order_by(col(Lesson.id))).all()
        out["lessons"] = [{"kind": lesson.kind, "text": lesson.text} for lesson in lessons
                          if "lessons" in fields or str(lesson.id) in chosen]
    return out


def build(s: Session, user_id: int, learner: str) -> dict[str, Any]:
    """The published portfolio of one learner (an empty list until something is published)."""
    public = published(s, user_id)
    projects = s.exec(select(Project).where(Project.user_id == user_id,
                                            col(Project.id).in_(list(public)))
                      .order_by(col(Project.id))).all() if public else []
    return {"format": FORMAT, "version": VERSION, "learner": learner,
            "projects": [project_entry(s, p, public[p.id]) for p in projects
                         if p.id is not None]}
