"""The evidence bundle: everything the coach knows about one project, as plain data.

It is the only input a post-mortem drafter gets, and what the grounding check
compares a text against.
"""

from __future__ import annotations

import re
from typing import Any

from sqlmodel import Session, select

from memory.models import (
    Evidence,
    Lesson,
    Project,
    ProjectUsage,
    StepTransition,
    Thread,
    TranscriptEntry,
)
from memory.vocabulary import LESSON_KINDS

LESSON_WORDS = ("worked", "didn't", "did not", "tradeoff", "trade-off", "decided", "decision",
                "learned", "surprised", "failed", "slow", "cost")
LABEL = re.compile(r"(?:^|\s)[A-Z][A-Za-z' -]{1,24}:\s")
EXCERPTS = 8
EXCERPT_CHARS = 300


def _stamp(e: Evidence) -> str:
    return e.checked_at.date().isoformat()


def _latest(evidence: list[Evidence], kind: str) -> dict[str, Any] | None:
    found = [e for e in evidence if e.kind == kind]
    if not found:
        return None
    e = max(found, key=lambda e: (e.checked_at, e.id or 0))
    return {**e.details, "recorded_on": _stamp(e), "verified": e.verified}


def _excerpts(session: Session, project: Project) -> list[tuple[int, str]]:
    """Learner messages that read like lessons, from the threads that coached this project
    (a thread moves on to the next project, so only messages before this one was done)."""
    transitions = session.exec(select(StepTransition)
                               .where(StepTransition.project_id == project.id)).all()
    threads = {t.thread_id for t in transitions if t.thread_id} | {t.id for t in session.exec(
        select(Thread).where(Thread.project_id == project.id)).all()}
    if not threads:
        return []
    query = select(TranscriptEntry).where(
        TranscriptEntry.thread_id.in_(threads),  # type: ignore[attr-defined]
        TranscriptEntry.role == "user")
    done = [t.at for t in transitions if t.to_step == "done"]
    if done:
        query = query.where(TranscriptEntry.created_at <= max(done))
    rows = session.exec(query
                        .order_by(TranscriptEntry.id.desc()).limit(200)).all()  # type: ignore[union-attr]
    out: list[tuple[int, str]] = []
    for row in rows:
        text = " ".join(b.get("text", "") for b in row.content if b.get("type") == "text")
        # Labelled answers are already in the structured fields; keep free-form notes.
        labelled = len(LABEL.findall(text)) >= 2 or text.lower().startswith(
            ("post-mortem:", "postmortem:"))
        if text and not labelled and any(w in text.lower() for w in LESSON_WORDS):
            out.append((row.id or 0, " ".join(text.split())[:EXCERPT_CHARS]))
        if len(out) >= EXCERPTS:
            break
    return list(reversed(out))


def _latest_id(evidence: list[Evidence], kind: str) -> int | None:
    found = [e for e in evidence if e.kind == kind]
    return max(found, key=lambda e: (e.checked_at, e.id or 0)).id if found else None


def is_interview_answer(e: Evidence) -> bool:
    return e.kind == "other" and "answers" in e.details


def evidence_bundle(session: Session, project: Project) -> dict[str, Any]:
    """The project's records as plain data. `records` holds the ids they come from (the
    sentence sources of a draft); the grounding check leaves it out, so an id never
    vouches for a figure."""
    pid = project.id
    evidence = list(session.exec(select(Evidence).where(Evidence.project_id == pid)).all())
    lessons = session.exec(select(Lesson).where(Lesson.project_id == pid)
                           .order_by(Lesson.id)).all()  # type: ignore[arg-type]
    evidence.sort(key=lambda e: (e.checked_at, e.id or 0))
    excerpts = _excerpts(session, project)
    others = [e for e in evidence if e.kind == "other" and not is_interview_answer(e)]
    answers = [e for e in evidence if is_interview_answer(e)]
    usage = session.exec(select(ProjectUsage).where(ProjectUsage.project_id == pid)).all()
    deployments = sorted((e for e in evidence if e.kind == "deployment"),
                         key=lambda e: (e.checked_at, e.id or 0))
    return {
        "project": {
            "id": pid, "title": project.title, "step": project.step,
            "difficulty": project.difficulty, "capabilities": project.capabilities,
            "problem": project.problem, "audience": project.audience,
            "personal_context": project.personal_context,
            "success_criteria": project.success_criteria, "repo": project.repo,
            "mvp_scope": project.mvp_scope, "mvp_feature_count": len(project.mvp_scope),
            "usage_note": project.usage_note,
        },
        "audit": _latest(evidence, "audit"),
        "deployments": [{k: e.details.get(k) for k in (
            "url", "final_url", "ok", "status_code", "latency_ms", "reason", "warnings")}
            | {"checked_on": _stamp(e)} for e in deployments],
        "evals": _latest(evidence, "evals"),
        "ci_gate": _latest(evidence, "ci_gate"),
        "observability": _latest(evidence, "observability"),
        "cost_tracking": _latest(evidence, "cost_tracking"),
        "confirmed": [e.details.get("confirmed") for e in others if e.details.get("confirmed")],
        "other": [e.details for e in others if not e.details.get("confirmed")],
        # The learner's answers to the post-mortem interview, latest per question.
        "interview": _answers(answers),
        "project_usage": [{
            "model": u.model, "input_tokens": u.input_tokens, "output_tokens": u.output_tokens,
            "requests": u.requests, "period": u.period,
            "cost_usd": None if u.cost_usd is None else str(u.cost_usd.normalize()),
        } for u in usage],
        "lessons": {kind: [lesson.text for lesson in lessons if lesson.kind == kind]
                    for kind in LESSON_KINDS},
        "transcript_excerpts": [text for _, text in excerpts],
        "records": {
            "project": pid,
            "evidence": {kind: _latest_id(evidence, kind) for kind in (
                "audit", "evals", "ci_gate", "observability", "cost_tracking")},
            "deployments": [e.id for e in deployments],
            "confirmed": [e.id for e in others if e.details.get("confirmed")],
            "other": [e.id for e in others if not e.details.get("confirmed")],
            "usage": [u.id for u in usage],
            "lessons": {kind: [lesson.id for lesson in lessons if lesson.kind == kind]
                        for kind in LESSON_KINDS},
            "transcript": [i for i, _ in excerpts],
            "interview": _answer_ids(answers),
        },
    }


def _answers(rows: list[Evidence]) -> dict[str, dict[str, Any]]:
    """Answers by question key; a later answer to the same question replaces an earlier."""
    out: dict[str, dict[str, Any]] = {}
    for e in rows:
        d = e.details
        out[str(d["answers"])] = {"answer": str(d.get("answer") or ""),
                                  "question": str(d.get("question") or ""),
                                  "kind": str(d.get("kind") or "note"),
                                  "skipped": bool(d.get("skipped"))}
    return out


def _answer_ids(rows: list[Evidence]) -> dict[str, int | None]:
    return {str(e.details["answers"]): e.id for e in rows}
