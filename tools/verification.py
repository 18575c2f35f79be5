"""Keeping the audit a gate relies on fresh: re-run when the gate is checked if the last
audit is older than the repository's HEAD or than a minute.

The gates stay pure functions of stored evidence; this module is what stores a new audit
before the gate looks. It runs outside any transaction (a clone can take seconds).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import select

from memory.models import Evidence, Project
from memory.store import session_scope
from tools.audit import AuditError, audit_repository, head_commit
from tools.base import ToolContext
from tools.deployment import AddressPolicy
from tools.gates import is_local_repo, is_remote_repo
from tools.outbound import network_check
from tools.remote import RemoteAudit, audit_remote

AUDIT_TTL = timedelta(seconds=60)
# Which steps' gates read an audit: build (a remote must be a readable git repository)
# and harden (stated claims are held against it).
AUDITED_STEPS = {"build": ("remote",), "harden": ("local", "remote")}


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _latest_audit(ctx: ToolContext, project_id: int, repo: str) -> Evidence | None:
    with session_scope(ctx.engine) as s:
        rows = s.exec(select(Evidence).where(Evidence.project_id == project_id,
                                             Evidence.kind == "audit")).all()
    mine = [e for e in rows if repo in (e.details.get("url"), e.details.get("path"))]
    return max(mine, key=lambda e: (_aware(e.checked_at), e.id or 0)) if mine else None


def policy_of(ctx: ToolContext) -> AddressPolicy:
    return AddressPolicy(allow_private=ctx.allow_private_urls,
                         extra_allowed=[*ctx.extra_allowed_networks])


def remote_audit(ctx: ToolContext, url: str) -> RemoteAudit:
    with network_check(ctx, "the repository clone"):
        return audit_remote(url, policy=policy_of(ctx), timeout=ctx.clone_timeout)


def audit_how(details: dict[str, Any]) -> str:
    """How the coach knows what an audit says, in the portfolio's words."""
    commit = str(details.get("commit") or "")[:7]
    return f"the coach audited the repository at commit {commit}" if commit \
        else "the coach audited the repository"


def store_audit(ctx: ToolContext, project_id: int, details: dict[str, Any], ok: bool) -> None:
    details = {**details, "how": audit_how(details)} if ok else details
    with session_scope(ctx.engine) as s:
        s.add(Evidence(project_id=project_id, kind="audit", details=details, verified=True,
                       ok=ok))


def _stale(last: Evidence | None, head: str | None = None, *, check_head: bool) -> bool:
    if last is None:
        return True
    if datetime.now(UTC) - _aware(last.checked_at) > AUDIT_TTL:
        return True
    return check_head and last.details.get("commit") != head


def refresh_audit(ctx: ToolContext, project: Project) -> None:
    """Audit the project's repository again if the gate of its step reads an audit and the
    last one is stale. Failures are stored too: the gate then says why."""
    kinds = AUDITED_STEPS.get(project.step, ())
    repo = project.repo.strip()
    assert project.id is not None
    if not repo:
        return
    last = _latest_audit(ctx, project.id, repo)
    if is_remote_repo(repo) and "remote" in kinds:
        if _stale(last, check_head=False):
            result = remote_audit(ctx, repo)
            store_audit(ctx, project.id, result.as_details(), result.ok)
    elif is_local_repo(repo) and "local" in kinds and ctx.allow_local_paths:
        head = head_commit(repo)
        if not _stale(last, head, check_head=True):
            return
        try:
            audit = audit_repository(repo)
        except AuditError as exc:
            store_audit(ctx, project.id, {"path": repo, "source": "local", "auditable": False,
                                          "reason": str(exc)}, False)
            return
        store_audit(ctx, project.id, audit.as_dict(), audit.is_git and audit.commits > 0)
