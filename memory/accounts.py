"""Who may use `coach serve`: API tokens, browser sessions and one-time sign-in links.

Every secret handed out (token, session cookie, sign-in code) is stored only as its
sha256: a copy of the database does not let anyone sign in. The secrets are 256 bits
of randomness, so a plain (unsalted, fast) hash is enough; there is nothing to guess.
Sessions and links live in the database so that every worker process sees them.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Engine, delete, update
from sqlmodel import col, select

from memory.models import SigninLink, User, WebSession, utcnow
from memory.store import session_scope

SESSION_TTL = timedelta(days=14)
LINK_TTL = timedelta(minutes=15)


class AccountError(Exception):
    """A user-management request that cannot be done; the message says why."""


@dataclass(frozen=True)
class Caller:
    """The signed-in learner of one request."""

    id: int
    name: str
    csrf_token: str | None = None  # set when signed in by session cookie


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _new_secret(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 200:
        raise AccountError("a user name must be 1-200 characters")
    return name


def add_user(engine: Engine, name: str) -> str:
    """Create a learner who can sign in (or give an existing CLI learner a token)."""
    name = _check_name(name)
    token = _new_secret("pc_")
    with session_scope(engine) as s:
        user = s.exec(select(User).where(User.name == name)).first()
        if user is not None and user.token_hash is not None:
            raise AccountError(f"user {name!r} already has a token; "
                               f"`coach users token {name}` issues a new one")
        user = user or User(name=name)
        user.token_hash = hash_secret(token)
        s.add(user)
    return token


def issue_token(engine: Engine, name: str) -> str:
    """A new token for an existing learner; the old one and their sessions stop working."""
    token = _new_secret("pc_")
    with session_scope(engine) as s:
        user = s.exec(select(User).where(User.name == _check_name(name))).first()
        if user is None:
            raise AccountError(f"no user {name!r}: `coach users add {name}` creates one")
        user.token_hash = hash_secret(token)
        s.add(user)
        s.execute(delete(WebSession).where(col(WebSession.user_id) == user.id))
    return token


def web_users(engine: Engine) -> list[str]:
    """Names of the learners who hold a token."""
    with session_scope(engine) as s:
        return list(s.exec(select(User.name).where(col(User.token_hash).is_not(None))
                           .order_by(User.name)).all())


def signed_in_users(engine: Engine) -> dict[str, str]:
    """Every learner who can use `coach serve`, and how: with a token, or signed in through
    a one-time link (which `coach serve` prints on loopback, so that learner has no token)."""
    with session_scope(engine) as s:
        out = {name: "token" for name in s.exec(
            select(User.name).where(col(User.token_hash).is_not(None))).all()}
        linked = s.exec(select(User.name).join(SigninLink, col(SigninLink.user_id) == User.id)
                        .where(col(SigninLink.used_at).is_not(None))).all()
        for name in linked:
            out.setdefault(name, "sign-in link")
        return dict(sorted(out.items()))


def user_for_token(engine: Engine, token: str) -> Caller | None:
    if not token:
        return None
    with session_scope(engine) as s:
        user = s.exec(select(User).where(User.token_hash == hash_secret(token))).first()
        return Caller(user.id, user.name) if user and user.id is not None else None


def create_link(engine: Engine, user_id: int) -> str:
    """A sign-in code that works once, within LINK_TTL."""
    code = _new_secret("")
    with session_scope(engine) as s:
        s.add(SigninLink(id=hash_secret(code), user_id=user_id,
                         expires_at=utcnow() + LINK_TTL))
    return code


def consume_link(engine: Engine, code: str) -> int | None:
    """The link's learner, if the code is valid; it can never be used again."""
    if not code:
        return None
    key, now = hash_secret(code), utcnow()
    with session_scope(engine) as s:
        # One conditional UPDATE: of two workers racing for one code, only one wins.
        used = s.execute(update(SigninLink)
                         .where(col(SigninLink.id) == key, col(SigninLink.used_at).is_(None),
                                col(SigninLink.expires_at) > now)
                         .values(used_at=now))
        if used.rowcount != 1:  # type: ignore[attr-defined]
            return None
        link = s.get(SigninLink, key)
        return link.user_id if link else None


def open_session(engine: Engine, user_id: int) -> tuple[str, str]:
    """(cookie secret, CSRF token) for a browser that just signed in."""
    secret, csrf = _new_secret(""), secrets.token_urlsafe(32)
    now = utcnow()
    with session_scope(engine) as s:
        # Housekeeping on sign-in keeps the table from growing without a cron job.
        s.execute(delete(WebSession).where(col(WebSession.expires_at) < now))
        s.add(WebSession(id=hash_secret(secret), user_id=user_id, csrf_token=csrf,
                         expires_at=now + SESSION_TTL))
    return secret, csrf


def session_caller(engine: Engine, secret: str) -> Caller | None:
    if not secret:
        return None
    with session_scope(engine) as s:
        row = s.exec(select(WebSession, User)
                     .where(WebSession.id == hash_secret(secret),
                            col(WebSession.expires_at) > utcnow(),
                            WebSession.user_id == User.id)).first()
        if row is None:
            return None
        web, user = row
        assert user.id is not None
        return Caller(user.id, user.name, web.csrf_token)


def close_session(engine: Engine, secret: str) -> None:
    with session_scope(engine) as s:
        s.execute(delete(WebSession).where(col(WebSession.id) == hash_secret(secret)))
