"""The pages: chat, portfolio, costs, traces. A visitor without a session is sent to sign in.

Each page is a shell plus its own script in `static/`, which reads the JSON API with
the session cookie; nothing is loaded from anywhere but this server.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from agent.web.app import Web, web
from agent.web.auth import page_caller
from agent.web.rendering import page

router = APIRouter(include_in_schema=False)
PAGES = {
    "/": ("chat.html", "Coach", "chat.js"),
    "/portfolio": ("portfolio.html", "Portfolio", "portfolio.js"),
    "/costs": ("costs.html", "Costs", "costs.js"),
    "/traces": ("traces.html", "Traces", "traces.js"),
}


def _show(path: str, request: Request, w: Web) -> Response:
    me = page_caller(request, w)
    if me is None:
        return RedirectResponse(f"/signin?next={quote(path)}", status_code=303)
    name, title, script = PAGES[path]
    return HTMLResponse(page(name, title=title, user=me.name, script=script),
                        headers={"Cache-Control": "no-store"})


@router.get("/")
def chat_page(request: Request, w: Annotated[Web, Depends(web)]) -> Response:
    return _show("/", request, w)


@router.get("/portfolio")
def portfolio_page(request: Request, w: Annotated[Web, Depends(web)]) -> Response:
    return _show("/portfolio", request, w)


@router.get("/costs")
def costs_page(request: Request, w: Annotated[Web, Depends(web)]) -> Response:
    return _show("/costs", request, w)


@router.get("/traces")
def traces_page(request: Request, w: Annotated[Web, Depends(web)]) -> Response:
    return _show("/traces", request, w)


@router.get("/favicon.ico")
def favicon() -> Response:
    return Response(status_code=204)  # no icon, and no 404 in the browser console
