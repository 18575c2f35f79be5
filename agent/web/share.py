"""`GET /p/{slug}`: the learner's published portfolio for whoever holds the link, read-only
and without sign-in. Only published fields are shown (the same document the export
writes); an unknown or revoked slug answers 404 like any missing page.

Caching: `Cache-Control: private, no-store`. A revoked link or an unpublished field
must disappear at once, so no shared cache (and no browser disk cache) may keep a
copy; the page is cheap to render. The stylesheet, which is the same for everyone,
may be cached for an hour. `X-Robots-Tag: noindex` keeps a capability URL out of
search engines, and the page's `no-referrer` policy keeps the slug out of the
Referer header when the reader follows a link to the learner's app (and the
app's `Referrer-Policy: same-origin` already sends none to other sites).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from agent.portfolio import document, render
from agent.portfolio.visibility import share_owner
from agent.web.app import Web, web
from memory.models import User
from memory.store import session_scope

router = APIRouter(include_in_schema=False)
SLUG = re.compile(r"[A-Za-z0-9_-]{16,64}")
PRIVATE = {"Cache-Control": "private, no-store", "X-Robots-Tag": "noindex, nofollow"}
CSS_PATH = "/p/style.css"


def _document(w: Web, slug: str) -> dict[str, Any]:
    # A malformed slug is just another page that does not exist.
    user_id = share_owner(w.engine, slug) if SLUG.fullmatch(slug) else None
    if user_id is None:
        raise HTTPException(404, "no such page", headers=PRIVATE)
    with session_scope(w.engine) as s:
        user = s.get(User, user_id)
        assert user is not None
        return document.build(s, user_id, user.name)


@router.get(CSS_PATH)
def share_css() -> Response:
    return Response(render.CSS, media_type="text/css",
                    headers={"Cache-Control": "public, max-age=3600"})


@router.get("/p/{slug}")
async def shared_portfolio(slug: str, w: Annotated[Web, Depends(web)]) -> Response:
    doc = await run_in_threadpool(_document, w, slug)
    body = render.index_html(doc, css=CSS_PATH, href=lambda pid: f"/p/{slug}/{pid}")
    return HTMLResponse(body, headers=PRIVATE)


@router.get("/p/{slug}/{project_id}")
async def shared_project(slug: str, project_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
                         w: Annotated[Web, Depends(web)]) -> Response:
    doc = await run_in_threadpool(_document, w, slug)
    for p in doc["projects"]:
        if p["id"] == project_id:
            return HTMLResponse(render.project_html(p, css=CSS_PATH, back=f"/p/{slug}"),
                                headers=PRIVATE)
    raise HTTPException(404, "no such page", headers=PRIVATE)
