"""Is a project's deployment up? Its recorded checks and every later re-check, merged."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlmodel import Session, col, select

from agent.portfolio.claims import day
from memory.models import DeploymentRecheck, Evidence


@dataclass(frozen=True)
class Check:
    at: datetime
    ok: bool
    url: str
    status_code: int | None
    reason: str


def deployed_url(s: Session, project_id: int) -> str | None:
    """The URL of the project's latest deployment check that passed: what is re-checked."""
    rows = s.exec(select(Evidence).where(Evidence.project_id == project_id,
                                         Evidence.kind == "deployment", col(Evidence.ok))
                  .order_by(col(Evidence.checked_at).desc(), col(Evidence.id).desc())).all()
    for row in rows:
        if isinstance(row.details.get("url"), str):
            return str(row.details["url"])
    return None


def checks(s: Session, project_id: int, url: str) -> list[Check]:
    """Every check of `url` for this project, oldest first (the gate's and re-checks)."""
    found = [Check(e.checked_at, e.ok, url, e.details.get("status_code"),
                   str(e.details.get("reason") or ""))
             for e in s.exec(select(Evidence).where(Evidence.project_id == project_id,
                                                    Evidence.kind == "deployment")).all()
             if e.details.get("url") == url]
    found += [Check(r.checked_at, r.ok, url, r.status_code, r.reason)
              for r in s.exec(select(DeploymentRecheck)
                              .where(DeploymentRecheck.project_id == project_id,
                                     DeploymentRecheck.url == url)).all()]
    return sorted(found, key=lambda c: _naive(c.at))


def _naive(at: datetime) -> datetime:
    # SQLite hands back naive datetimes (stored as UTC), PostgreSQL aware ones.
    return at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo is not None else at


@dataclass(frozen=True)
class Status:
    url: str
    live: bool
    last_verified: datetime | None  # the latest check that passed
    down_since: datetime | None  # the first failure of the current outage
    last_checked: datetime
    reason: str

    def words(self) -> str:
        if self.live and self.last_verified is not None:
            return f"live as of {day(self.last_verified)}"
        return f"down since {day(self.down_since or self.last_checked)}"


def deployment_status(s: Session, project_id: int) -> Status | None:
    url = deployed_url(s, project_id)
    if url is None:
        return None
    history = checks(s, project_id, url)
    last = history[-1]
    passed = [c for c in history if c.ok]
    down_since = None
    if not last.ok:
        streak = [c for c in history if not passed or _naive(c.at) > _naive(passed[-1].at)]
        down_since = streak[0].at
    return Status(url=url, live=last.ok, last_verified=passed[-1].at if passed else None,
                  down_since=down_since, last_checked=last.at, reason=last.reason)
