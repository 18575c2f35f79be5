"""Learners in the store."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlmodel import select

from memory.models import User
from memory.store import session_scope


def ensure_user(engine: Engine, name: str) -> int:
    """The learner's id, creating the learner on first use."""
    with session_scope(engine) as s:
        user = s.exec(select(User).where(User.name == name)).first()
        if user is None:
            user = User(name=name)
            s.add(user)
            s.flush()
        assert user.id is not None
        return user.id
