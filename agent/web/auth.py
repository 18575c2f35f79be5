"""Who is calling: a Bearer token (API clients) or a session cookie (the browser).

The browser signs in by posting its token (or following a one-time link from `coach
serve`); it then holds an HttpOnly, SameSite=Lax session cookie and a readable CSRF
cookie. A write authenticated by the cookie must echo the CSRF token in
`X-CSRF-Token` (double submit) and, when the browser sends an Origin, come from this
server's origin. Bearer requests carry no ambient credential, so they need neither.
"""

from __future__ import annotations

import hmac
import re
from typing import Annotated
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from agent.web.app import Web, web
from agent.web.ratelimit import RateLimited, client_address, guard_of
from agent.web.rendering import render
from memory.accounts import (
    SESSION_TTL,
    Caller,
    close_session,
    consume_link,
    open_session,
    session_caller,
    user_for_token,
)

SESSION_COOKIE = "coach_session"
CSRF_COOKIE = "coach_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
LOCAL_PATH = re.compile(r"/[A-Za-z0-9/_.~?=&%+-]*")
router = APIRouter(include_in_schema=False)


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


def same_origin(request: Request) -> bool:
    """False only when the browser says the request comes from another site."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    host = request.headers.get("host", "")
    return origin != "null" and urlsplit(origin).netloc == host


def caller(request: Request, w: Annotated[Web, Depends(web)]) -> Caller:
    """FastAPI dependency for every API route: the signed-in learner, or 401/403."""
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _unauthorized("use `Authorization: Bearer TOKEN`")
        found = user_for_token(w.engine, token.strip())
        if found is None:
            # Failures are counted per address: past the limit they answer 429, while a
            # valid token from the same address (a shared NAT) still works.
            guard_of(request).hit("bad_token", client_address(request))
            raise _unauthorized("unknown or revoked token")
        return found
    found = session_caller(w.engine, request.cookies.get(SESSION_COOKIE, ""))
    if found is None:
        raise _unauthorized("sign in, or send `Authorization: Bearer TOKEN`")
    if request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not (found.csrf_token and hmac.compare_digest(sent, found.csrf_token)):
            raise HTTPException(403, "cookie-authenticated writes need the X-CSRF-Token "
                                     "header from the coach_csrf cookie")
        if not same_origin(request):
            raise HTTPException(403, "cross-site request refused")
    return found


def page_caller(request: Request, w: Web) -> Caller | None:
    return session_caller(w.engine, request.cookies.get(SESSION_COOKIE, ""))


def _local_path(value: str | None) -> str:
    # Only plain paths on this server: `next=//evil.example` (or `/\tevil`, which browsers
    # read as `//evil`) must not become an open redirect.
    if value and LOCAL_PATH.fullmatch(value) and not value.startswith("//"):
        return value
    return "/"


def _signed_in(request: Request, w: Web, user_id: int, target: str) -> Response:
    secret, csrf = open_session(w.engine, user_id)
    response = RedirectResponse(_local_path(target), status_code=303)
    secure = request.url.scheme == "https"
    age = int(SESSION_TTL.total_seconds())
    response.set_cookie(SESSION_COOKIE, secret, max_age=age, httponly=True, samesite="lax",
                        secure=secure, path="/")
    # Readable by the page's script, which echoes it in X-CSRF-Token.
    response.set_cookie(CSRF_COOKIE, csrf, max_age=age, httponly=False, samesite="strict",
                        secure=secure, path="/")
    return response


def _refused(request: Request, name: str) -> Response | None:
    """The sign-in page with 429 and Retry-After when this address failed too often."""
    try:
        guard_of(request).check(name, client_address(request))
    except RateLimited as limited:
        page = signin_page(f"Too many failed sign-ins from here: {limited.detail}.",
                           status=429)
        page.headers["Retry-After"] = str(limited.retry_after)
        return page
    return None


def _count_failure(request: Request) -> None:
    try:
        guard_of(request).hit("signin", client_address(request))
    except RateLimited:
        pass  # this failure is answered 401; the next attempt gets the 429


def signin_page(error: str = "", next_path: str = "/", status: int = 200) -> HTMLResponse:
    return HTMLResponse(render("signin.html", error=error, next=_local_path(next_path)),
                        status_code=status)


@router.get("/signin")
def signin_form(request: Request, w: Annotated[Web, Depends(web)], code: str = "",
                next: str = "/") -> Response:
    """The sign-in page, or a one-time link from `coach serve` (`?code=…`)."""
    if code:
        refused = _refused(request, "signin")
        if refused is not None:
            return refused
        user_id = consume_link(w.engine, code[:200])
        if user_id is None:
            _count_failure(request)
            return signin_page("That sign-in link is used or expired: sign in with your "
                               "token.", next, 401)
        return _signed_in(request, w, user_id, next)
    return signin_page(next_path=next)


@router.post("/signin")
async def signin(request: Request, w: Annotated[Web, Depends(web)]) -> Response:
    # A urlencoded form parsed by hand: no python-multipart dependency for one field.
    if not same_origin(request):
        raise HTTPException(403, "cross-site sign-in refused")
    form = parse_qs((await request.body()).decode("utf-8", errors="replace"))
    token = (form.get("token") or [""])[0].strip()
    target = (form.get("next") or ["/"])[0]
    refused = await run_in_threadpool(_refused, request, "signin")
    if refused is not None:
        return refused
    found = await run_in_threadpool(user_for_token, w.engine, token)
    if found is None:
        await run_in_threadpool(_count_failure, request)
        return signin_page("That token is not valid.", target, 401)
    return _signed_in(request, w, found.id, target)


@router.post("/signout")
def signout(request: Request, w: Annotated[Web, Depends(web)],
            who: Annotated[Caller, Depends(caller)]) -> Response:
    close_session(w.engine, request.cookies.get(SESSION_COOKIE, ""))
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response
