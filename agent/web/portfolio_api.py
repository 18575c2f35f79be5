"""The signed-in learner's side of the public portfolio: what is published, publishing
from the web page, the readiness report, and each deployment's live/down status."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, Field
from sqlmodel import col, select

from agent.errors import CoachError
from agent.portfolio import readiness, visibility
from agent.portfolio.status import deployment_status
from agent.web.app import Web, web
from agent.web.auth import caller
from memory.accounts import Caller
from memory.models import Project, ShareLink
from memory.store import session_scope

router = APIRouter(tags=["portfolio"])
Me = Annotated[Caller, Depends(caller)]
W = Annotated[Web, Depends(web)]


class PublishIn(BaseModel):
    project_id: int = Field(ge=1, le=2**31 - 1)
    fields: list[str] | None = Field(default=None, max_length=20,
                                     description="Fields to publish or hide; all when absent.")
    unpublish: bool = False


@router.get("/api/portfolio")
def portfolio(me: Me, w: W) -> dict[str, Any]:
    """What is public, each deployment's status, whether a share link is live, and the
    readiness report."""
    with session_scope(w.engine) as s:
        public = visibility.published(s, me.id)
        ids = s.exec(select(Project.id).where(Project.user_id == me.id)
                     .order_by(col(Project.id))).all()
        statuses = {}
        for pid in ids:
            if pid is not None and (st := deployment_status(s, pid)) is not None:
                statuses[str(pid)] = {"live": st.live, "status": st.words(), "url": st.url}
        shared = s.exec(select(ShareLink.id).where(ShareLink.user_id == me.id,
                                                   col(ShareLink.revoked_at).is_(None))).first()
        report = readiness.report(s, me.id)
    return {"fields": list(visibility.FIELDS),
            "public": {str(pid): sorted(f) for pid, f in public.items()},
            "deployments": statuses, "share_link": shared is not None, "report": report}


@router.post("/api/portfolio/publish")
def publish(body: PublishIn, me: Me, w: W) -> dict[str, Any]:
    """Publish a project (all fields, or the ones given), or hide it (`unpublish`)."""
    try:
        if body.unpublish:
            fields = visibility.parse_fields(body.fields) if body.fields else None
            public = visibility.unpublish(w.engine, me.id, body.project_id, fields)
        else:
            public = visibility.publish(w.engine, me.id, body.project_id,
                                        visibility.parse_fields(body.fields))
    except CoachError as exc:
        status = 404 if "no project" in str(exc) else 422
        raise HTTPException(status, str(exc) if status == 422 else
                            "no project of yours has that id") from exc
    return {"project_id": body.project_id, "public": public}


@router.get("/api/portfolio/report")
def report(me: Me, w: W) -> dict[str, Any]:
    """The readiness report (as `coach portfolio report --json`)."""
    with session_scope(w.engine) as s:
        return readiness.report(s, me.id)


@router.post("/api/portfolio/share")
def share(me: Me, w: W) -> dict[str, Any]:
    """A new share link (shown once; any older link stops working)."""
    slug, replaced = visibility.create_share(w.engine, me.id)
    return {"slug": slug, "path": f"/p/{slug}", "replaced": replaced}


@router.delete("/api/portfolio/share")
def revoke(me: Me, w: W) -> dict[str, Any]:
    """Stop the share link working (it answers 404)."""
    return {"revoked": visibility.revoke_share(w.engine, me.id)}
