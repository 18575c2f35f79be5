"""The step-5 tool: a submitted post-mortem, checked and kept as a numbered version."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import Field
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, func, select

from memory.models import Evidence, Lesson, PostmortemVersion, Project
from memory.store import session_scope
from tools.base import Args, Tool, ToolContext, ToolError, own_project
from tools.bundle import evidence_bundle
from tools.drafter import TARGET_WORDS, offline_compose
from tools.effects import record_call
from tools.gates import POSTMORTEM_WORDS, missing_sections, word_count
from tools.grounding import grounding_report
from tools.sentences import TODO, Draft, Todo, as_json, sentences_of


class SubmitPostmortemArgs(Args):
    project_id: int
    text: str = Field(min_length=1, max_length=60_000)


def postmortem_report(text: str, bundle: dict[str, Any],
                      sentences: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Which of the step-5 checks a text passes and fails: length, sections, grounding
    (for a draft, also every sentence's sources)."""
    words = word_count(text)
    low, high = POSTMORTEM_WORDS
    passed, failed = [], []
    if low <= words <= high:
        passed.append(f"length: {words} words")
    else:
        failed.append(f"a length of {low}–{high} words (it has {words})")
    absent = missing_sections(text)
    if absent:
        failed.append("sections on " + ", ".join(absent))
    else:
        passed.append("sections: what worked, what didn't, tradeoffs")
    grounding = grounding_report(text, bundle, sentences)
    if grounding["grounded"]:
        passed.append(f"grounding: {grounding['checked']} figures, all in the evidence")
    else:
        items = "; ".join(f"{u['item']} ({u['kind']}) in “{_short(u['sentence'])}”"
                          for u in grounding["unsupported"][:10])
        failed.append(f"every figure backed by recorded evidence: unsupported {items} — fix "
                      "them, put them in a [TODO], or confirm them (`Confirm: …`)")
    return {"words": words, "target_words": TARGET_WORDS, "passed": passed, "failed": failed,
            "grounding": grounding, "todos_left": len(TODO.findall(text))}


def _short(sentence: str, limit: int = 160) -> str:
    return sentence if len(sentence) <= limit else sentence[:limit - 1].rstrip() + "…"


def next_version(session: Session, project_id: int) -> int:
    latest = session.exec(select(func.max(PostmortemVersion.version))
                          .where(PostmortemVersion.project_id == project_id)).one()
    return (latest or 0) + 1


def submit_postmortem(ctx: ToolContext, args: SubmitPostmortemArgs) -> dict[str, Any]:
    """Submit the learner's post-mortem (~1,500 words; sections on what worked, what didn't,
    and the tradeoffs). Every submission is kept as a new version; the checks it passed and
    failed come back, and the step-5 gate uses the latest submission."""
    with session_scope(ctx.engine) as s:
        project = own_project(s, ctx, args.project_id)
        report = postmortem_report(args.text, evidence_bundle(s, project))
        version = store_version(s, args.project_id, "submission", args.text, report)
        return record_call(s, ctx, {"project_id": args.project_id, "version": version,
                                    **report, "passed_checks": not report["failed"]})


def store_version(s: Session, project_id: int, source: str, text: str,
                  report: dict[str, Any]) -> int:
    """Every draft and submission becomes a new numbered version; none is overwritten."""
    for _ in range(5):
        try:
            # A savepoint, so that losing the race for a number leaves the session usable.
            with s.begin_nested():
                row = PostmortemVersion(project_id=project_id,
                                        version=next_version(s, project_id), source=source,
                                        text=text, words=report["words"], report=report)
                s.add(row)
                s.flush()
            return row.version
        except IntegrityError:
            continue  # another draft took this number at the same moment: take the next
    raise ToolError("could not number this version (too many at once); try again")


class DraftArgs(Args):
    project_id: int


def draft_postmortem(ctx: ToolContext, args: DraftArgs) -> dict[str, Any]:
    """Draft the project's post-mortem from its recorded evidence (problem, build, deployment
    checks, evals, CI, tracing, costs, lessons). Missing facts become [TODO: …] prompts; the
    draft is kept as a new version with its word count and grounding report."""
    with session_scope(ctx.engine) as s:
        bundle = evidence_bundle(s, own_project(s, ctx, args.project_id))
    # Drafting may call a model: outside any transaction.
    draft = compose(ctx, bundle)
    text, sentences = draft.markdown, as_json(draft.sentences)
    todos = [t.as_dict() for t in draft.todos]
    with session_scope(ctx.engine) as s:
        report = postmortem_report(text, bundle, sentences) | {"sentences": sentences,
                                                                "todos": todos}
        version = store_version(s, args.project_id, "draft", text, report)
        return record_call(s, ctx, {
            "project_id": args.project_id, "version": version, "words": report["words"],
            "target_words": TARGET_WORDS, "sections": section_names(text),
            "grounding": report["grounding"], "failed": report["failed"], "text": text,
            "sentences": sentences, "todos": todos})


def compose(ctx: ToolContext, bundle: dict[str, Any]) -> Draft:
    """The draft with its sentences: the offline drafter's own, or a model's (a drafter
    that returns only Markdown gets its sentences attributed to the records they repeat)."""
    if ctx.drafter is None:
        return offline_compose(bundle)
    out = ctx.drafter(bundle)
    if isinstance(out, Draft):
        return out
    return Draft(out, sentences_of(out, bundle), todos_of(out))


def todos_of(text: str) -> list[Todo]:
    return [Todo(f"todo:{i}", m.group(0)[len("[TODO:"):-1].strip())
            for i, m in enumerate(TODO.finditer(text))]


def section_names(text: str) -> list[str]:
    return [line[3:].strip() for line in text.splitlines() if line.startswith("## ")]


POSTMORTEM_TOOLS = [Tool("submit_postmortem", SubmitPostmortemArgs, submit_postmortem,
                         writes=True),
                    Tool("draft_postmortem", DraftArgs, draft_postmortem, writes=True)]


def stale_projects(engine: Engine, user_id: int) -> list[int]:
    """Projects at step 5 whose latest draft predates their latest evidence or lesson."""
    with session_scope(engine) as s:
        projects = s.exec(select(Project).where(Project.user_id == user_id,
                                                Project.step == "postmortem")).all()
        stale = []
        for p in projects:
            drafted = s.exec(select(func.max(PostmortemVersion.created_at)).where(
                PostmortemVersion.project_id == p.id,
                PostmortemVersion.source == "draft")).one()
            changed = max(filter(None, [
                p.updated_at,
                s.exec(select(func.max(Evidence.checked_at))
                       .where(Evidence.project_id == p.id)).one(),
                s.exec(select(func.max(Lesson.created_at))
                       .where(Lesson.project_id == p.id)).one()]))
            if drafted is None or _utc(drafted) < _utc(changed):
                stale.append(p.id)
        return [pid for pid in stale if pid is not None]


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
