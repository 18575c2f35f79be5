"""The step-5 tool: a submitted post-mortem, checked and kept as a numbered version."""

from __future__ import annotations

from typing import Any

from pydantic import Field
from sqlmodel import Session, func, select

from memory.models import PostmortemVersion
from memory.store import session_scope
from tools.base import Args, Tool, ToolContext, own_project
from tools.gates import POSTMORTEM_WORDS, missing_sections, word_count


class SubmitPostmortemArgs(Args):
    project_id: int
    text: str = Field(min_length=1, max_length=60_000)


def postmortem_report(text: str) -> dict[str, Any]:
    """Which of the step-5 checks a text passes and fails."""
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
    return {"words": words, "passed": passed, "failed": failed}


def next_version(session: Session, project_id: int) -> int:
    latest = session.exec(select(func.max(PostmortemVersion.version))
                          .where(PostmortemVersion.project_id == project_id)).one()
    return (latest or 0) + 1


def submit_postmortem(ctx: ToolContext, args: SubmitPostmortemArgs) -> dict[str, Any]:
    """Submit the learner's post-mortem (~1,500 words; sections on what worked, what didn't,
    and the tradeoffs). Every submission is kept as a new version; the checks it passed and
    failed come back, and the step-5 gate uses the latest submission."""
    report = postmortem_report(args.text)
    with session_scope(ctx.engine) as s:
        own_project(s, ctx, args.project_id)
        version = PostmortemVersion(project_id=args.project_id,
                                    version=next_version(s, args.project_id),
                                    source="submission", text=args.text,
                                    words=report["words"], report=report)
        s.add(version)
        s.flush()
        return {"project_id": args.project_id, "version": version.version, **report,
                "passed_checks": not report["failed"]}


POSTMORTEM_TOOLS = [Tool("submit_postmortem", SubmitPostmortemArgs, submit_postmortem)]
