"""Learners in the store."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from memory.models import User
from memory.store import session_scope


def ensure_user(engine: Engine, name: str) -> int:
    """The learner's id, creating the learner on first use."""
    try:
        return _ensure_user(engine, name)
    except IntegrityError:
        # Another process created the same learner between our look and our insert.
        return _ensure_user(engine, name)


def _ensure_user(engine: Engine, name: str) -> int:
    with session_scope(engine) as s:
        user = s.exec(select(User).where(User.name == name)).first()
        if user is None:
            user = User(name=name)
            s.add(user)
            s.flush()
        assert user.id is not None
        return user.id
