"""A coaching session: one learner, their threads, and turns run through the graph."""

from __future__ import annotations

import contextvars
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from opentelemetry import metrics, trace
from sqlalchemy import Engine, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from agent.context import CoachRuntime
from agent.drafting import ClaudeDrafter
from agent.errors import MAX_MESSAGE_BYTES, CoachError, ThreadBusy
from agent.graph import build_graph
from agent.offline import OfflineCoach
from agent.settings import Settings
from memory.checkpoints import open_checkpointer
from memory.models import Project, Thread, TranscriptEntry, utcnow
from memory.store import open_engine, session_scope
from memory.users import ensure_user
from seam.model import Model, ModelError, text_of
from seam.pricing import price_table
from telemetry.budget import Budget
from telemetry.genai import capture_content as content_capture_on
from telemetry.genai import redact
from telemetry.instrument import InstrumentedModel, ToolTracer, node_spans, record_redacted
from telemetry.ledger import Call, MeteredModel
from telemetry.tracing import coach_provider, default_meter_provider, flush, trace_id_of
from tools import ToolContext

LEASE = timedelta(minutes=5)
# How long a CLI session waits for another session's turn on the same thread.
LEASE_WAIT_S = 30.0
THREAD_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# The model calls of the turn running in this context: one Coach may serve several threads.
_TURN_CALLS: contextvars.ContextVar[list[Call] | None] = contextvars.ContextVar(
    "coach_turn_calls", default=None)


def _observe(call: Call) -> None:
    calls = _TURN_CALLS.get()
    if calls is not None:
        calls.append(call)


@dataclass
class TurnResult:
    thread_id: str
    turn: int
    reply: str
    step: str | None
    project_id: int | None
    model: str
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    usage: dict[str, int] = field(default_factory=dict)
    cost_usd: Decimal | None = Decimal(0)
    trace_id: str | None = None
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        out = {
            "thread_id": self.thread_id, "turn": self.turn, "reply": self.reply,
            "step": self.step, "project_id": self.project_id, "tool_calls": self.tool_calls,
            "usage": self.usage,
            "cost_usd": None if self.cost_usd is None else float(self.cost_usd),
            "model": self.model, "trace_id": self.trace_id,
        }
        if self.error:
            out["error"] = self.error
        return out


def make_model(name: str) -> Model:
    if name == "offline":
        return OfflineCoach()
    import anthropic  # loaded only when a Claude model is asked for

    from agent.claude import ClaudeModel

    if not (os.environ.get("ANTHROPIC_API_KEY") or os.environ.get("ANTHROPIC_AUTH_TOKEN")):
        raise CoachError(f"model {name!r} needs ANTHROPIC_API_KEY; without one, use the offline"
                         " coach (--model offline)")
    try:
        return ClaudeModel(name)
    except anthropic.AnthropicError as exc:
        raise CoachError(f"cannot use model {name!r}: {exc}") from exc


def validate_message(text: str) -> str:
    if not text or not text.strip():
        raise CoachError("empty message: say something, or `help`")
    if any(ord(c) < 32 and c not in "\n\r\t" for c in text):
        raise CoachError("message contains control characters; send plain text")
    size = len(text.encode("utf-8"))
    if size > MAX_MESSAGE_BYTES:
        raise CoachError(f"message too long: {size:,} bytes (at most {MAX_MESSAGE_BYTES:,});"
                         " send it in parts or as a file (`Post-mortem: @file.md`)")
    return text.strip()


def _usage_totals(calls: list[Call]) -> dict[str, int]:
    keys = ("input_tokens", "output_tokens", "cache_read_input_tokens",
            "cache_creation_input_tokens")
    return {k: sum(getattr(c.usage, k) for c in calls) for k in keys}


class Coach:
    """Runs turns for one learner against one store and checkpointer."""

    def __init__(self, engine: Engine, checkpointer: BaseCheckpointSaver, *, user: str,
                 model: Model, allow_private_urls: bool = False,
                 tool_context: Callable[[int, str], ToolContext] | None = None,
                 tracer_provider: trace.TracerProvider | None = None,
                 budget_usd: Decimal | None = None, user_prices: Path | None = None,
                 lease_wait: float = 0.0,
                 meter_provider: metrics.MeterProvider | None = None,
                 capture_content: bool | None = None, allow_local_paths: bool = True):
        self.engine = engine
        self.checkpointer = checkpointer
        self.user = user
        self.user_id = ensure_user(engine, user)
        self.prices = prices = price_table(user_prices)
        budget = Budget(budget_usd, engine, self.user_id, prices) if budget_usd is not None \
            else None
        self.model = MeteredModel(model, engine, prices, observer=_observe,
                                  budget=budget)
        self.allow_private_urls = allow_private_urls
        self._tool_context = tool_context
        self.owner = uuid.uuid4().hex
        self.lease_wait = lease_wait
        self.allow_local_paths = allow_local_paths
        # Telemetry wraps the model, the tool runner and the nodes here, once.
        self.tracer_provider = tracer_provider or coach_provider(engine)
        self.meter_provider = meter_provider or default_meter_provider()
        self.tracer = self.tracer_provider.get_tracer("portfolio-coach")
        capture = content_capture_on() if capture_content is None else capture_content
        self._traced_model = InstrumentedModel(self.model, self.tracer_provider,
                                               self.meter_provider, capture_content=capture,
                                               user=user)
        self._tool_tracer = ToolTracer(self.tracer_provider, capture_content=capture)
        # Claude drafts post-mortems when Claude coaches; the offline drafter otherwise.
        self._drafter = None if model.provider == "offline" else \
            ClaudeDrafter(self._traced_model, self.user_id)
        self.graph = build_graph(wrap=node_spans(self.tracer_provider)).compile(
            checkpointer=checkpointer)

    @classmethod
    @contextmanager
    def open(cls, settings: Settings, model: Model | None = None) -> Iterator[Coach]:
        engine = open_engine(settings.database_url)
        coach: Coach | None = None
        try:
            with open_checkpointer(settings.database_url) as saver:
                coach = cls(engine, saver, user=settings.user,
                            model=model or make_model(settings.model),
                            allow_private_urls=settings.allow_private_urls,
                            budget_usd=settings.budget_usd,
                            user_prices=settings.home / "prices.json",
                            lease_wait=LEASE_WAIT_S)
                yield coach
        finally:
            if coach is not None:
                flush(coach.tracer_provider)
            engine.dispose()

    # -- threads ----------------------------------------------------------------------

    def thread(self, thread_id: str | None = None) -> str:
        """An existing thread of this learner, or a new one (with this id if given)."""
        if thread_id is not None and not THREAD_ID.match(thread_id):
            raise CoachError(f"bad thread id {thread_id!r}: use letters, digits, '.', '_', '-'")
        thread_id = thread_id or uuid.uuid4().hex[:12]
        try:
            self._claim_thread(thread_id)
        except IntegrityError:
            self._claim_thread(thread_id)  # created by another process meanwhile: look again
        return thread_id

    def _claim_thread(self, thread_id: str) -> None:
        with session_scope(self.engine) as s:
            found = s.get(Thread, thread_id)
            if found is None:
                # A new thread picks up the learner's current project, decided now.
                active = s.exec(select(Project.id).where(
                    Project.user_id == self.user_id, Project.step != "done")
                    .order_by(Project.id.desc())).first()  # type: ignore[union-attr]
                s.add(Thread(id=thread_id, user_id=self.user_id, project_id=active))
            elif found.user_id != self.user_id:
                raise CoachError(f"thread {thread_id} belongs to another learner")

    def threads(self) -> list[Thread]:
        with session_scope(self.engine) as s:
            return list(s.exec(select(Thread).where(Thread.user_id == self.user_id)
                               .order_by(Thread.updated_at)).all())  # type: ignore[arg-type]

    def transcript(self, thread_id: str) -> list[TranscriptEntry]:
        self.thread(thread_id)
        with session_scope(self.engine) as s:
            return list(s.exec(select(TranscriptEntry)
                               .where(TranscriptEntry.thread_id == thread_id)
                               .order_by(TranscriptEntry.turn, TranscriptEntry.seq)).all())  # type: ignore[arg-type]

    def _take_lease(self, thread_id: str) -> bool:
        now = utcnow()
        with session_scope(self.engine) as s:
            taken = s.execute(
                update(Thread)
                .where(Thread.id == thread_id, Thread.user_id == self.user_id)  # type: ignore[arg-type]
                .where((Thread.lease_owner.is_(None)) | (Thread.lease_until < now))  # type: ignore[union-attr,operator]
                .values(lease_owner=self.owner, lease_until=now + LEASE))
        return bool(taken.rowcount == 1)  # type: ignore[attr-defined]

    def _renew_lease(self, thread_id: str, stop: threading.Event) -> None:
        while not stop.wait(LEASE.total_seconds() / 3):
            with session_scope(self.engine) as s:
                s.execute(update(Thread).where(Thread.id == thread_id,  # type: ignore[arg-type]
                                               Thread.lease_owner == self.owner)  # type: ignore[arg-type]
                          .values(lease_until=utcnow() + LEASE))

    @contextmanager
    def _lease(self, thread_id: str) -> Iterator[None]:
        # Wait a little for a turn in another session to finish before saying busy.
        deadline = time.monotonic() + self.lease_wait
        while not self._take_lease(thread_id):
            if time.monotonic() >= deadline:
                raise ThreadBusy(f"thread {thread_id} is busy with another turn in another "
                                 "session; try again when it has answered")
            time.sleep(0.2)
        # A long turn (a slow model, retries) keeps its lease by renewing it.
        stop = threading.Event()
        keeper = threading.Thread(target=self._renew_lease, args=(thread_id, stop),
                                  daemon=True)
        keeper.start()
        try:
            yield
        finally:
            stop.set()
            keeper.join()
            with session_scope(self.engine) as s:
                s.execute(update(Thread).where(Thread.id == thread_id,  # type: ignore[arg-type]
                                               Thread.lease_owner == self.owner)  # type: ignore[arg-type]
                          .values(lease_owner=None, lease_until=None))

    # -- turns ------------------------------------------------------------------------

    def runtime(self, thread_id: str, on_text: Callable[[str], None] | None,
                text: str | None = None) -> CoachRuntime:
        if self._tool_context:
            ctx = self._tool_context(self.user_id, thread_id)
        else:
            ctx = ToolContext(self.engine, self.user_id, thread_id,
                              allow_private_urls=self.allow_private_urls, prices=self.prices,
                              drafter=self._drafter, allow_local_paths=self.allow_local_paths)
        ctx.learner_message = text
        return CoachRuntime(engine=self.engine, user_id=self.user_id, model=self._traced_model,
                            thread_id=thread_id, tool_context=ctx, on_text=on_text,
                            run_tool=self._tool_tracer.run)

    def turn(self, thread_id: str, text: str,
             on_text: Callable[[str], None] | None = None) -> TurnResult:
        """Run one learner message through the graph and record it in the transcript."""
        text = validate_message(text)
        self.thread(thread_id)
        attributes = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "coach",
                      "gen_ai.conversation.id": thread_id, "user.id": self.user,
                      "session.id": thread_id, "openinference.span.kind": "AGENT"}
        with self.tracer.start_as_current_span(
                "invoke_agent coach", attributes=attributes, record_exception=False,
                set_status_on_exception=False) as span, record_redacted(span):
            result = self._turn(thread_id, text, on_text)
            result.trace_id = trace_id_of(span)
            if result.project_id is not None:
                span.set_attribute("coach.project.id", result.project_id)
                span.set_attribute("coach.step", result.step or "")
            if result.error:
                span.set_status(trace.StatusCode.ERROR, result.error)
        return result

    def _turn(self, thread_id: str, text: str,
              on_text: Callable[[str], None] | None) -> TurnResult:
        with self._lease(thread_id):
            calls: list[Call] = []
            token = _TURN_CALLS.set(calls)
            config = {"configurable": {"thread_id": thread_id}}
            error: str | None = None
            try:
                state = self.graph.invoke({"incoming": text}, config,  # type: ignore[call-overload]
                                          context=self.runtime(thread_id, on_text, text),
                                          durability="exit")
                new = state["messages"][state["turn_start"]:]
                # Everything the coach said this turn, including text before its tool calls.
                reply = "\n\n".join(t for m in new if m["role"] == "assistant"
                                     if (t := text_of(m).strip()))
            except ModelError as exc:
                # Redacted before it reaches the transcript, the reply and the span.
                error = redact(str(exc))
                state = {}
                new = [{"role": "user", "content": [{"type": "text", "text": text}]}]
                reply = (f"Sorry, that turn failed: {error}. Your message is kept and anything "
                         "already saved stays saved; send it again to continue.")
            finally:
                _TURN_CALLS.reset(token)
            number = self._record(thread_id, new, error, state.get("project_id"))
            self.checkpointer.prune([thread_id])
        project_id = state.get("project_id") if state else self._thread_project(thread_id)
        return TurnResult(
            thread_id=thread_id, turn=number, reply=reply,
            step=self._step(project_id), project_id=project_id, model=self.model.name,
            tool_calls=list(state.get("tool_calls", [])) if state else [],
            usage=_usage_totals(calls),
            cost_usd=None if any(c.cost_usd is None for c in calls)
            else sum((c.cost_usd or Decimal(0) for c in calls), Decimal(0)),
            error=error)

    def _record(self, thread_id: str, new: list[dict[str, Any]], error: str | None,
                project_id: int | None) -> int:
        with session_scope(self.engine) as s:
            thread = s.get(Thread, thread_id)
            assert thread is not None
            thread.turns += 1
            thread.updated_at = utcnow()
            if project_id is not None:
                thread.project_id = project_id
            for seq, message in enumerate(new):
                content = message["content"]
                if isinstance(content, str):
                    content = [{"type": "text", "text": content}]
                s.add(TranscriptEntry(thread_id=thread_id, turn=thread.turns, seq=seq,
                                      role=message["role"], content=content))
            if error:
                s.add(TranscriptEntry(thread_id=thread_id, turn=thread.turns, seq=len(new),
                                      role="error", content=[{"type": "text", "text": error}]))
            s.add(thread)
            return thread.turns

    def _thread_project(self, thread_id: str) -> int | None:
        with session_scope(self.engine) as s:
            thread = s.get(Thread, thread_id)
            return thread.project_id if thread else None

    def _step(self, project_id: int | None) -> str | None:
        if project_id is None:
            return None
        with session_scope(self.engine) as s:
            project = s.get(Project, project_id)
            return project.step if project else None
