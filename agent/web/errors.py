"""Errors as clear JSON: `{"detail": "one line"}`, never a 500 for bad input."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from agent.errors import CoachError, ThreadBusy
from memory.accounts import AccountError
from memory.paging import BadCursor
from memory.store import StoreError
from seam.model import ModelError
from telemetry.genai import redact

log = logging.getLogger(__name__)


class MessageRejected(CoachError):
    """The learner's message itself is unusable (empty, too long): 422."""


def status_for(exc: BaseException) -> int:
    if isinstance(exc, ThreadBusy):
        return 409
    if isinstance(exc, MessageRejected):
        return 422
    if isinstance(exc, CoachError | AccountError):
        return 400
    if isinstance(exc, ModelError | StoreError):
        return 503
    return 500


def detail_for(exc: BaseException) -> str:
    if status_for(exc) == 500:
        return "internal error: the server logged it"
    return redact(str(exc))


def _where(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc) or "request"


def _denied(request: Request) -> JSONResponse | None:
    """FastAPI parses a JSON body before it runs the auth dependency; a caller without
    credentials must still hear 401 (or 403), not what was wrong with the body."""
    if request.url.path.startswith("/api/"):
        from agent.web.auth import caller  # auth imports this module

        try:
            caller(request, request.app.state.web)
        except HTTPException as denied:
            return JSONResponse(status_code=denied.status_code,
                                content={"detail": denied.detail},
                                headers=getattr(denied, "headers", None))
    return None


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    # A body FastAPI cannot even decode (bad UTF-8) is a 400 raised before auth runs.
    if exc.status_code == 400:
        denied = await run_in_threadpool(_denied, request)
        if denied is not None:
            return denied
    return await http_exception_handler(request, exc)


def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    denied = _denied(request)
    if denied is not None:
        return denied
    problems = [f"{_where(e.get('loc', ()))}: {e.get('msg', 'invalid')}" for e in exc.errors()]
    return JSONResponse(status_code=422, content={
        "detail": "invalid request: " + "; ".join(problems[:5]), "problems": problems})


def _bad_cursor(_request: Request, exc: Exception) -> JSONResponse:
    # Worded like the other bad parameters: the cursor is one, only checked later.
    return JSONResponse(status_code=422, content={"detail": f"invalid request: {exc}"})


def _known(_request: Request, exc: Exception) -> JSONResponse:
    status = status_for(exc)
    if status == 500:
        log.error("request failed", exc_info=exc)
    return JSONResponse(status_code=status, content={"detail": detail_for(exc)})


def install_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(BadCursor, _bad_cursor)
    for kind in (CoachError, AccountError, ModelError, StoreError, Exception):
        app.add_exception_handler(kind, _known)
