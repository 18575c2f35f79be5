"""Deployments re-checked: every recorded deployment fetched again through the deploy
gate's own check (same address policy), paced per host, with the history kept, and the
learner told once per outage at the start of their next turn."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import Engine, func, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from agent.portfolio.claims import day
from agent.portfolio.status import deployed_url, deployment_status
from agent.settings import SettingsError
from memory.models import DeploymentRecheck, Project, RecheckRun, ScheduleLease, utcnow
from memory.store import session_scope
from tools.deployment import AddressPolicy, DeploymentCheck, check_deployment_url

# At most one fetch per host this often within a run: a cohort on one host is not a burst.
HOST_GAP_S = 2.0
JOB = "recheck"
Checker = Callable[[str], DeploymentCheck]


@dataclass
class HostPacer:
    """Spaces fetches to one host by `gap_s`; clock and sleep are injectable for tests."""

    gap_s: float = HOST_GAP_S
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    last: dict[str, float] = field(default_factory=dict)

    def wait(self, url: str) -> None:
        try:
            host = httpx.URL(url).host
        except (httpx.InvalidURL, TypeError):
            return
        if host in self.last:
            remaining = self.last[host] + self.gap_s - self.clock()
            if remaining > 0:
                self.sleep(remaining)
        self.last[host] = self.clock()


def owner_id() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}"


def targets(engine: Engine, user_id: int | None) -> list[tuple[int, str]]:
    """(project id, URL) of every recorded deployment: the learner's, or everyone's."""
    with session_scope(engine) as s:
        query = select(Project.id)
        if user_id is not None:
            query = query.where(Project.user_id == user_id)
        out = []
        for pid in s.exec(query.order_by(col(Project.id))).all():
            if pid is not None and (url := deployed_url(s, pid)) is not None:
                out.append((pid, url))
        return out


def recheck(engine: Engine, *, user_id: int | None, trigger: str, policy: AddressPolicy,
            timeout: float = 10.0, pacer: HostPacer | None = None,
            check: Checker | None = None, tick: datetime | None = None) -> dict[str, Any]:
    """Fetch each deployment again and record the result; returns the run's summary."""
    pacer = pacer or HostPacer()
    fetch = check or (lambda url: check_deployment_url(url, policy=policy, timeout=timeout))
    with session_scope(engine) as s:
        # A scheduled run starts at its tick, so the history shows the schedule exactly.
        run = RecheckRun(trigger=trigger, owner=owner_id(), started_at=tick or utcnow())
        s.add(run)
        s.flush()
        run_id = run.id
    results: list[dict[str, Any]] = []
    for pid, url in targets(engine, user_id):
        pacer.wait(url)
        # Outside any transaction: a fetch can take seconds.
        result = fetch(url)
        with session_scope(engine) as s:
            s.add(DeploymentRecheck(project_id=pid, run_id=run_id, url=url, ok=result.ok,
                                    status_code=result.status_code,
                                    latency_ms=result.latency_ms, reason=result.reason[:2000]))
        results.append({"project_id": pid, "url": url, "ok": result.ok,
                        "status_code": result.status_code, "reason": result.reason})
    with session_scope(engine) as s:
        row = s.get(RecheckRun, run_id)
        assert row is not None
        row.finished_at = utcnow()
        row.checked = len(results)
        row.down = sum(not r["ok"] for r in results)
        s.add(row)
    with session_scope(engine) as s:
        for r in results:
            st = deployment_status(s, r["project_id"])
            r["status"] = st.words() if st else None
    return {"run_id": run_id, "trigger": trigger, "checked": len(results),
            "down": sum(not r["ok"] for r in results), "results": results}


def down_notices(engine: Engine, user_id: int) -> list[str]:
    """What to tell the learner now: each project whose URL went down since they were last
    told. The newest failing re-check is marked, so one outage is mentioned once. A few
    indexed queries per project, however long the history grows."""
    notes = []
    with session_scope(engine) as s:
        projects = s.exec(select(Project.id, Project.title)
                          .where(Project.user_id == user_id)).all()
        for pid, title in projects:
            latest = s.exec(select(DeploymentRecheck)
                            .where(DeploymentRecheck.project_id == pid)
                            .order_by(col(DeploymentRecheck.id).desc())).first()
            if latest is None or latest.ok:
                continue
            last_ok = s.exec(select(func.max(DeploymentRecheck.id))
                             .where(DeploymentRecheck.project_id == pid,
                                    col(DeploymentRecheck.ok))).one() or 0
            outage = (DeploymentRecheck.project_id == pid, col(DeploymentRecheck.id) > last_ok)
            told = s.exec(select(DeploymentRecheck.id).where(
                *outage, col(DeploymentRecheck.notified_at).is_not(None))).first()
            if told is not None:
                continue
            first = s.exec(select(DeploymentRecheck).where(*outage)
                           .order_by(col(DeploymentRecheck.id))).first()
            since = day(first.checked_at if first else latest.checked_at)
            notes.append(f"Heads-up: {title}'s live URL {latest.url} has been down since "
                         f"{since} ({latest.reason}). Once it is back, run `coach recheck`; "
                         "your portfolio shows it as down until then.")
            latest.notified_at = utcnow()
            s.add(latest)
    return notes


# -- the schedule --------------------------------------------------------------------------

def interval_hours(raw: str | None) -> float | None:
    """COACH_RECHECK_HOURS: unset means daily; `0` or `off` turns the schedule off."""
    if raw is None or not raw.strip():
        return 24.0
    if raw.strip().lower() in ("0", "off", "none", "false"):
        return None
    try:
        hours = float(raw)
    except ValueError as exc:
        raise SettingsError(f"COACH_RECHECK_HOURS must be a number of hours or 'off', "
                         f"not {raw!r}") from exc
    if not hours > 0:
        return None
    return hours


def claim_tick(engine: Engine, every: timedelta, owner: str,
               lease: timedelta = timedelta(minutes=30)) -> datetime | None:
    """The tick's time for exactly one process per tick, else None: an atomic UPDATE of the
    job's lease row that only matches when the last run is at least `every` old and no
    lease is held. A server's first start records the time and waits a full interval (it
    does not fire at boot)."""
    now = utcnow()
    with session_scope(engine) as s:
        exists = s.get(ScheduleLease, JOB) is not None
    if not exists:
        try:
            with session_scope(engine) as s:
                s.add(ScheduleLease(name=JOB, last_run_at=now))
        except IntegrityError:
            pass  # another process created it first
        return None
    with engine.begin() as conn:
        won = conn.execute(
            update(ScheduleLease)
            .where(col(ScheduleLease.name) == JOB,
                   or_(col(ScheduleLease.last_run_at).is_(None),
                       col(ScheduleLease.last_run_at) <= now - every),
                   or_(col(ScheduleLease.lease_until).is_(None),
                       col(ScheduleLease.lease_until) < now))
            .values(owner=owner, last_run_at=now, lease_until=now + lease))
        return now if won.rowcount == 1 else None


def release(engine: Engine, owner: str) -> None:
    with engine.begin() as conn:
        conn.execute(update(ScheduleLease)
                     .where(col(ScheduleLease.name) == JOB, col(ScheduleLease.owner) == owner)
                     .values(lease_until=None))
