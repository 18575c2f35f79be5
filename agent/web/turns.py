"""Running a learner's turn for the web: a Coach per request, off the event loop.

A Coach is cheap to build (a few ms) and holds no state between turns that the
database does not, so each request builds its own for the signed-in learner; the
engine, checkpointer and tracer provider are the worker's, shared.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from typing import Any

from fastapi.sse import EventSourceResponse, format_sse_event

from agent.drafting import drafting_context
from agent.errors import CoachError
from agent.session import Coach, TurnResult, validate_message
from agent.web.app import LEASE_WAIT_S, Web
from agent.web.errors import MessageRejected, detail_for, status_for
from agent.web.rendering import markdown_html
from memory.accounts import Caller
from tools import ToolContext

log = logging.getLogger(__name__)
TurnRun = Callable[[Callable[[str], None] | None], TurnResult]


def check_message(text: str) -> str:
    """The coach's own checks (empty, too long), as a 422 before any work starts."""
    try:
        return validate_message(text)
    except CoachError as exc:
        raise MessageRejected(str(exc)) from exc


def make_coach(w: Web, me: Caller) -> Coach:
    s = w.settings
    return Coach(w.engine, w.checkpointer, user=me.name, model=w.model_factory(),
                 allow_private_urls=s.allow_private_urls, budget_usd=s.budget_usd,
                 user_prices=s.home / "prices.json", lease_wait=LEASE_WAIT_S,
                 tracer_provider=w.tracer_provider,
                 # A learner's path would point at the server's disk, not their own.
                 allow_local_paths=False, check_links=True, outbound=w.outbound)


def turn_runner(w: Web, me: Caller, thread_id: str, text: str) -> TurnRun:
    def run(on_text: Callable[[str], None] | None) -> TurnResult:
        return make_coach(w, me).turn(thread_id, text, on_text=on_text)
    return run


def released(run: TurnRun, release: Callable[[], None]) -> TurnRun:
    """`run`, then `release` (the learner's turn slot) however the turn ends."""
    def wrapped(on_text: Callable[[str], None] | None) -> TurnResult:
        try:
            return run(on_text)
        finally:
            release()
    return wrapped


def draft_context(w: Web, me: Caller) -> ToolContext:
    # A learner's path would point at the server's disk, not their own.
    return drafting_context(w.settings, w.engine, me.id, w.model_factory(),
                            allow_local_paths=False, tracer_provider=w.tracer_provider)


def sse(event: str, data: dict[str, Any]) -> bytes:
    return format_sse_event(data_str=json.dumps(data, default=str), event=event)


async def stream_turn(run: TurnRun, pool: Executor) -> EventSourceResponse:
    """The reply as server-sent events: `text` events as it is written, then one `turn`
    event with the turn object. The turn runs in a worker thread and feeds a queue;
    an error before any output (a busy thread) is raised here, so it gets its 4xx.

    FastAPI's own SSE support encodes the events (`format_sse_event`) and names the
    response (`EventSourceResponse`); its `yield`-from-the-route form is not used because
    one route answers JSON or a stream by `Accept`, and a busy thread must still get its
    409 before the stream starts."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    def emit(kind: str, value: Any) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, (kind, value))

    def work() -> None:
        streamed = False

        def on_text(piece: str) -> None:
            nonlocal streamed
            streamed = True
            emit("text", piece)

        try:
            result = run(on_text)
        except Exception as exc:  # handed to the response: a 4xx, or an `error` event
            emit("error", exc)
            return
        if not streamed:  # the offline coach answers at once: its reply is one event
            emit("text", result.reply)
        emit("turn", result)

    # The turn finishes and is recorded even if the browser goes away mid-stream.
    loop.run_in_executor(pool, work)
    first = await queue.get()
    if first[0] == "error":
        raise first[1]

    async def events() -> AsyncIterator[bytes]:
        kind, value = first
        while True:
            if kind == "text":
                yield sse("text", {"text": value})
            elif kind == "turn":
                turn = value.as_json()
                # The reply as safe HTML for the page, in its own event: the turn object
                # stays exactly a `coach chat --json` line.
                yield sse("html", {"html": markdown_html(turn["reply"])})
                yield sse("turn", turn)
                return
            else:
                if status_for(value) == 500:
                    log.error("turn failed mid-stream", exc_info=value)
                yield sse("error", {"detail": detail_for(value), "status": status_for(value)})
                return
            kind, value = await queue.get()

    return EventSourceResponse(events(), headers={"Cache-Control": "no-cache",
                                                  "X-Accel-Buffering": "no"})
