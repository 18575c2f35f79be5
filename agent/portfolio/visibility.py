"""What is public: nothing until the learner publishes a project (or some of its fields),
and the share link that shows only that.

A share link is a capability URL: whoever has it may read. The slug comes from
`secrets.token_urlsafe(24)` (192 bits) and only its sha256 is stored, like every other
secret of the coach (tokens, sessions, sign-in codes): a copy of the database does not
give anyone a working link. The cost is that a link cannot be shown again, so `share`
makes a new one (the old one stops working) when the learner has lost it.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from agent.errors import CoachError
from memory.models import Lesson, Project, Publication, ShareLink, utcnow
from memory.store import session_scope

# The fields a learner can publish, in page order. The title is shown whenever a project
# is published at all: a page needs a name.
FIELDS: tuple[str, ...] = (
    "problem", "audience", "why_me", "mvp", "repository", "deployment", "evals", "ci_gate",
    "observability", "cost", "capabilities", "postmortem", "lessons")
# The row that marks a project published (with or without other fields).
PROJECT = "title"
# One chosen lesson: "lesson:ID". The `lessons` field publishes all of them.
LESSON = "lesson:"
SLUG_BYTES = 24


def parse_fields(raw: Iterable[str] | None) -> list[str]:
    """`--fields a,b c` into known field names; every field when none are given."""
    names = [n.strip() for item in raw or () for n in item.split(",") if n.strip()]
    if not names:
        return list(FIELDS)
    unknown = sorted(set(names) - set(FIELDS) - {PROJECT})
    if unknown:
        raise CoachError(f"unknown field(s) {', '.join(unknown)}: choose from "
                         f"{', '.join(FIELDS)}")
    return [f for f in FIELDS if f in names]


def _own(s: Session, user_id: int, project_id: int) -> Project:
    project = s.get(Project, project_id)
    if project is None or project.user_id != user_id:
        raise CoachError(f"no project {project_id} in your portfolio")
    return project


def lesson_fields(engine: Engine, user_id: int, project_id: int,
                  lesson_ids: Iterable[int]) -> list[str]:
    """`lesson:ID` names for chosen lessons of this project (an unknown id is an error)."""
    wanted = sorted(set(lesson_ids))
    if not wanted:
        return []
    with session_scope(engine) as s:
        _own(s, user_id, project_id)
        have = set(s.exec(select(Lesson.id).where(Lesson.project_id == project_id)).all())
    missing = [i for i in wanted if i not in have]
    if missing:
        raise CoachError(f"project {project_id} has no lesson {', '.join(map(str, missing))}")
    return [f"{LESSON}{i}" for i in wanted]


def lessons_of(engine: Engine, user_id: int, project_id: int) -> list[dict[str, object]]:
    """The project's lessons with their ids and whether each is public."""
    with session_scope(engine) as s:
        _own(s, user_id, project_id)
        public = set(s.exec(select(Publication.field)
                            .where(Publication.project_id == project_id)).all())
        rows = s.exec(select(Lesson).where(Lesson.project_id == project_id)
                      .order_by(col(Lesson.id))).all()
        return [{"id": r.id, "kind": r.kind, "text": r.text,
                 "public": PROJECT in public and ("lessons" in public
                                                  or f"{LESSON}{r.id}" in public)}
                for r in rows]


def _ordered(names: set[str]) -> list[str]:
    chosen = sorted((n for n in names if n.startswith(LESSON)),
                    key=lambda n: int(n.removeprefix(LESSON)))
    return [f for f in (PROJECT, *FIELDS) if f in names] + chosen


def publish(engine: Engine, user_id: int, project_id: int, fields: list[str]) -> list[str]:
    """Make the project and these fields public; returns every public field of it now."""
    with session_scope(engine) as s:
        _own(s, user_id, project_id)
        have = set(s.exec(select(Publication.field)
                          .where(Publication.project_id == project_id)).all())
        for name in [PROJECT, *fields]:
            if name not in have:
                s.add(Publication(project_id=project_id, field=name))
                have.add(name)
    return _ordered(have)


def unpublish(engine: Engine, user_id: int, project_id: int,
              fields: list[str] | None) -> list[str]:
    """Hide these fields, or (None) the whole project; returns what stays public."""
    with session_scope(engine) as s:
        _own(s, user_id, project_id)
        rows = s.exec(select(Publication).where(Publication.project_id == project_id)).all()
        for row in rows:
            if fields is None or row.field in fields:
                s.delete(row)
        left = {r.field for r in rows if fields is not None and r.field not in fields}
    return _ordered(left) if PROJECT in left else []


def published(s: Session, user_id: int) -> dict[int, set[str]]:
    """Project id -> its public fields, for the learner's published projects only."""
    rows = s.exec(select(Publication.project_id, Publication.field)
                  .join(Project, col(Project.id) == Publication.project_id)
                  .where(Project.user_id == user_id)).all()
    out: dict[int, set[str]] = {}
    for pid, name in rows:
        out.setdefault(pid, set()).add(name)
    return {pid: names for pid, names in out.items() if PROJECT in names}


def _digest(slug: str) -> str:
    return hashlib.sha256(slug.encode()).hexdigest()


def create_share(engine: Engine, user_id: int) -> tuple[str, bool]:
    """A new share slug (returned once, stored hashed) and whether an older link was
    replaced; the learner has one live link at a time."""
    slug = secrets.token_urlsafe(SLUG_BYTES)
    with session_scope(engine) as s:
        replaced = _revoke(s, user_id)
        s.add(ShareLink(id=_digest(slug), user_id=user_id))
    return slug, replaced


def _revoke(s: Session, user_id: int) -> bool:
    live = s.exec(select(ShareLink).where(ShareLink.user_id == user_id,
                                          col(ShareLink.revoked_at).is_(None))).all()
    for link in live:
        link.revoked_at = utcnow()
        s.add(link)
    return bool(live)


def revoke_share(engine: Engine, user_id: int) -> bool:
    """Stop the learner's share link answering; False when there was none."""
    with session_scope(engine) as s:
        return _revoke(s, user_id)


def share_owner(engine: Engine, slug: str) -> int | None:
    """The learner a live slug belongs to, else None (unknown and revoked look the same)."""
    with session_scope(engine) as s:
        link = s.get(ShareLink, _digest(slug))
        return link.user_id if link is not None and link.revoked_at is None else None
