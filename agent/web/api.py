"""The JSON API of threads, turns and projects (SPEC: HTTP API). Every query is scoped
to the caller; another learner's id is answered exactly like a missing one (404)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from sqlalchemy import and_, or_, text
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from agent.steps import GUIDES
from agent.threads import THREAD_ID, ThreadNotFound, Threads
from agent.web.app import Web, web
from agent.web.auth import caller
from agent.web.ratelimit import guard_of
from agent.web.rendering import markdown_html
from agent.web.schemas import ERRORS, MessageIn, ThreadCreated, ThreadList, Transcript, Turn
from agent.web.turns import check_message, draft_context, released, stream_turn, turn_runner
from memory.accounts import Caller
from memory.models import PostmortemVersion, Project, Thread
from memory.paging import make_cursor, read_cursor
from memory.store import session_scope
from tools import TOOLS, ToolContext
from tools.projects import portfolio_page, project_view

router = APIRouter(responses=ERRORS)
Me = Annotated[Caller, Depends(caller)]
W = Annotated[Web, Depends(web)]
# Ids beyond a 32-bit integer would make PostgreSQL raise instead of finding nothing.
ProjectId = Annotated[int, Path(ge=1, le=2**31 - 1)]
ThreadId = Annotated[str, Path(pattern=THREAD_ID.pattern)]
# List endpoints answer a page at a time (a learner may have thousands of threads).
PAGE, MAX_PAGE = 50, 200


def _iso(value: Any) -> str:
    return value.isoformat() if value is not None else ""


def _not_found(what: str) -> HTTPException:
    return HTTPException(404, f"no {what} of yours has that id")


@router.get("/healthz", tags=["health"], responses={503: {}})
def healthz(w: W) -> Response:
    """Liveness and database reachability; needs no sign-in."""
    try:
        with w.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError:
        return JSONResponse({"status": "error", "database": "unreachable"}, status_code=503)
    return JSONResponse({"status": "ok", "database": "ok"})


# -- threads ------------------------------------------------------------------------------

def owned_thread(w: Web, me: Caller, thread_id: str) -> Thread:
    try:
        return Threads(w.engine, me.id).get(thread_id)
    except ThreadNotFound as exc:
        raise _not_found("thread") from exc


@router.post("/api/threads", tags=["threads"], response_model=ThreadCreated,
             responses={429: {"description": "too many threads created; see Retry-After"}})
def create_thread(request: Request, me: Me, w: W) -> ThreadCreated:
    """Start a coaching thread; it continues the caller's active project."""
    guard_of(request).hit("threads", f"user:{me.id}")
    return ThreadCreated(thread_id=Threads(w.engine, me.id).open())


@router.get("/api/threads", tags=["threads"], response_model=ThreadList)
def list_threads(me: Me, w: W, limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = PAGE,
                 cursor: Annotated[str | None, Query(max_length=200)] = None) -> dict[str, Any]:
    """The caller's threads, most recently used first, a page at a time: pass the
    response's `next_cursor` as `cursor` for the next page."""
    query = select(Thread).where(Thread.user_id == me.id)
    if cursor:
        after, after_id = read_cursor(cursor, "threads", datetime, str)
        query = query.where(or_(col(Thread.updated_at) < after,
                                and_(col(Thread.updated_at) == after, col(Thread.id) < after_id)))
    with session_scope(w.engine) as s:
        threads = list(s.exec(query.order_by(col(Thread.updated_at).desc(), col(Thread.id).desc())
                              .limit(limit + 1)).all())
        titles = dict(s.exec(select(Project.id, Project.title)
                             .where(Project.user_id == me.id)).all())
    more = len(threads) > limit
    threads = threads[:limit]
    return {"threads": [
        {"thread_id": t.id, "turns": t.turns, "project_id": t.project_id,
         "project_title": titles.get(t.project_id), "created_at": _iso(t.created_at),
         "updated_at": _iso(t.updated_at)} for t in threads],
        "next_cursor": make_cursor("threads", threads[-1].updated_at, threads[-1].id)
        if more else None}


@router.get("/api/threads/{thread_id}", tags=["threads"], response_model=Transcript)
def get_thread(thread_id: ThreadId, me: Me, w: W) -> dict[str, Any]:
    """The thread's transcript: every message of every turn, in Messages-API blocks."""
    thread = owned_thread(w, me, thread_id)
    entries = Threads(w.engine, me.id).transcript(thread_id)
    return {"thread_id": thread.id, "turns": thread.turns, "project_id": thread.project_id,
            "transcript": [{"turn": e.turn, "seq": e.seq, "role": e.role,
                            "content": e.content, "created_at": _iso(e.created_at),
                            **_entry_html(e.role, e.content)}
                           for e in entries]}


def _entry_html(role: str, content: list[dict[str, Any]]) -> dict[str, str]:
    """The coach's text in an entry, rendered from Markdown (the learner's stays plain)."""
    if role != "assistant":
        return {}
    text = "\n\n".join(b.get("text", "") for b in content if b.get("type") == "text")
    return {"html": markdown_html(text)} if text.strip() else {}


@router.post("/api/threads/{thread_id}/messages", tags=["threads"], responses={
    200: {"model": Turn, "content": {"text/event-stream": {"schema": {"type": "string"}}},
          "description": "The turn; with `Accept: text/event-stream`, `text` events as the "
                         "reply is written, an `html` event with the reply rendered from "
                         "Markdown (safe HTML), then a `turn` event with the same object."}})
async def send_message(thread_id: ThreadId, body: MessageIn, request: Request, me: Me,
                       w: W) -> Response:
    """Send the learner's message; the coach answers with one turn."""
    message = check_message(body.text)
    guard = guard_of(request)

    def admit() -> str:
        owned_thread(w, me, thread_id)
        guard.hit("messages", f"user:{me.id}")
        # A slot among the learner's running turns, taken before the turn queues for a worker.
        return guard.take_turn(me.id)

    # One trip to the thread pool, not three: under load each trip waits behind other requests.
    slot = await run_in_threadpool(admit)
    run = released(turn_runner(w, me, thread_id, message), lambda: guard.slots.give_back(slot))
    if "text/event-stream" in request.headers.get("accept", ""):
        return await stream_turn(run, w.turns)
    result = await asyncio.get_running_loop().run_in_executor(w.turns, run, None)
    return JSONResponse(result.as_json())


# -- projects -----------------------------------------------------------------------------

def owned_project(s: Session, me: Caller, project_id: int) -> Project:
    project = s.get(Project, project_id)
    if project is None or project.user_id != me.id:
        raise _not_found("project")
    return project


@router.get("/api/projects", tags=["projects"])
def list_projects(me: Me, w: W, limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = PAGE,
                  cursor: Annotated[str | None, Query(max_length=200)] = None,
                  ) -> dict[str, Any]:
    """Your projects with step and difficulty in the order you started them, a page at a
    time (pass `next_cursor` back as `cursor`), and portfolio readiness over all of them
    (as `coach projects list --json`)."""
    return portfolio_page(ToolContext(w.engine, me.id), limit, cursor)


@router.get("/api/projects/{project_id}", tags=["projects"])
def get_project(project_id: ProjectId, me: Me, w: W) -> dict[str, Any]:
    """One project (as `coach projects show --json`), with its step guide, evidence and
    every post-mortem version."""
    with session_scope(w.engine) as s:
        project = owned_project(s, me, project_id)
        view = project_view(s, project)
        versions = s.exec(select(PostmortemVersion)
                          .where(PostmortemVersion.project_id == project.id)
                          .order_by(col(PostmortemVersion.version))).all()
    guide = GUIDES[project.step]
    return {**view,
            "guide": {"number": guide.number, "name": guide.name, "why": guide.why},
            "postmortem_versions": [
                {"version": v.version, "source": v.source, "words": v.words,
                 "created_at": _iso(v.created_at), "failed": v.report.get("failed", []),
                 "text": v.text, "sentences": v.report.get("sentences", [])}
                for v in versions]}


@router.post("/api/projects/{project_id}/postmortem", tags=["projects"])
def draft_postmortem(project_id: ProjectId, me: Me, w: W) -> dict[str, Any]:
    """Draft the project's post-mortem from its evidence: a new numbered version."""
    with session_scope(w.engine) as s:
        owned_project(s, me, project_id)
    result = TOOLS["draft_postmortem"](draft_context(w, me), {"project_id": project_id})
    if not result.ok:
        raise HTTPException(400, result.content.get("error", "drafting failed"))
    return result.content
