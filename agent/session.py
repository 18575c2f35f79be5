"""A coaching session: one learner, their threads, and turns run through the graph."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from opentelemetry import metrics, trace
from sqlalchemy import Engine

from agent.context import CoachRuntime
from agent.drafting import ClaudeDrafter
from agent.errors import MAX_MESSAGE_BYTES, CoachError
from agent.graph import build_graph
from agent.portfolio.recheck import down_notices
from agent.settings import Settings
from agent.stack import build_model, make_model
from agent.threads import Threads
from memory.checkpoints import open_checkpointer
from memory.models import Project, TranscriptEntry
from memory.store import open_engine, session_scope
from memory.users import ensure_user
from seam.model import Model, ModelError, ModelRequest, ModelResponse, WrapperModel, text_of
from seam.pricing import price_table
from telemetry.budget import Budget
from telemetry.genai import capture_content as content_capture_on
from telemetry.genai import io_attributes, redact
from telemetry.instrument import ToolTracer, node_spans, record_redacted
from telemetry.tracing import coach_provider, flush, trace_id_of
from tools import ToolContext
from tools.outbound import Outbound

# How long a CLI session waits for another session's turn on the same thread.
LEASE_WAIT_S = 30.0


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


def _usage_totals(calls: list[ModelResponse]) -> dict[str, int]:
    keys = ("input_tokens", "output_tokens", "cache_read_input_tokens",
            "cache_creation_input_tokens")
    return {k: sum(getattr(c.usage, k) for c in calls) for k in keys}


def _cost_total(calls: list[ModelResponse]) -> Decimal | None:
    # A call of unknown price makes the turn's cost unknown, not smaller.
    if any(c.cost_usd is None for c in calls):
        return None
    return sum((c.cost_usd or Decimal(0) for c in calls), Decimal(0))


class Tally(WrapperModel):
    """The turn's model: the built stack, keeping each response (with its cost) so the
    turn can report what it used."""

    def __init__(self, inner: Model):
        super().__init__(inner)
        self.responses: list[ModelResponse] = []

    def complete(self, request: ModelRequest) -> ModelResponse:
        response = self.inner.complete(request)
        self.responses.append(response)
        return response


class Coach:
    """Runs turns for one learner against one store and checkpointer."""

    def __init__(self, engine: Engine, checkpointer: BaseCheckpointSaver, *, user: str,
                 model: Model, allow_private_urls: bool = False,
                 tool_context: Callable[[int, str], ToolContext] | None = None,
                 tracer_provider: trace.TracerProvider | None = None,
                 budget_usd: Decimal | None = None, user_prices: Path | None = None,
                 lease_wait: float = 0.0,
                 meter_provider: metrics.MeterProvider | None = None,
                 capture_content: bool | None = None, allow_local_paths: bool = True,
                 purpose: str = "coach", budget: Budget | None = None,
                 check_links: bool = False, outbound: Outbound | None = None):
        self.engine = engine
        self.checkpointer = checkpointer
        self.user = user
        self.user_id = ensure_user(engine, user)
        self.threads = Threads(engine, self.user_id, lease_wait=lease_wait)
        self.prices = price_table(user_prices)
        self.allow_private_urls = allow_private_urls
        self._tool_context = tool_context
        self.allow_local_paths = allow_local_paths
        # Fetch stated trace links to verify them: the CLI and the web app do; a Coach a
        # test builds does not reach out to the hosts its learners name.
        self.check_links = check_links
        # The server's bound on slow network checks at once (None: the CLI, unbounded).
        self.outbound = outbound
        self.name = model.name
        self.purpose = purpose
        self.tracer_provider = tracer_provider or coach_provider(engine)
        self.tracer = self.tracer_provider.get_tracer("portfolio-coach")
        # Metered, budgeted and traced in the one place every model is built.
        self.model = build_model(model, engine, self.user_id, purpose=purpose,
                                 prices=self.prices, budget_usd=budget_usd, budget=budget,
                                 tracer_provider=self.tracer_provider,
                                 meter_provider=meter_provider,
                                 capture_content=capture_content, user=user)
        self._tool_tracer = ToolTracer(self.tracer_provider, capture_content=capture_content
                                       if capture_content is not None else content_capture_on())
        # Claude drafts post-mortems when Claude coaches; the offline drafter otherwise.
        self._claude_drafts = model.provider != "offline"
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
                            check_links=True, budget_usd=settings.budget_usd,
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
        return self.threads.open(thread_id)

    def transcript(self, thread_id: str) -> list[TranscriptEntry]:
        return self.threads.transcript(thread_id)

    # -- turns ------------------------------------------------------------------------

    def runtime(self, thread_id: str, on_text: Callable[[str], None] | None,
                text: str | None = None, model: Model | None = None) -> CoachRuntime:
        model = model or self.model
        if self._tool_context:
            ctx = self._tool_context(self.user_id, thread_id)
        else:
            drafter = ClaudeDrafter(model, self.user_id) if self._claude_drafts else None
            ctx = ToolContext(self.engine, self.user_id, thread_id,
                              allow_private_urls=self.allow_private_urls, prices=self.prices,
                              drafter=drafter, allow_local_paths=self.allow_local_paths,
                              check_links=self.check_links, outbound=self.outbound)
        ctx.learner_message = text
        return CoachRuntime(engine=self.engine, user_id=self.user_id, model=model,
                            thread_id=thread_id, tool_context=ctx, on_text=on_text,
                            run_tool=self._tool_tracer.run, purpose=self.purpose)

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
            if self._tool_tracer.capture_content:  # the turn's own input and output
                span.set_attributes(io_attributes(self._tool_tracer.redact, text,
                                                  result.reply))
            if result.project_id is not None:
                span.set_attribute("coach.project.id", result.project_id)
                span.set_attribute("coach.step", result.step or "")
            if result.error:
                span.set_status(trace.StatusCode.ERROR, result.error)
        return result

    def _turn(self, thread_id: str, text: str,
              on_text: Callable[[str], None] | None) -> TurnResult:
        with self.threads.lease(thread_id):
            turn = self.threads.begin_turn(thread_id, text)
            tally = Tally(self.model)
            calls = tally.responses
            runtime = self.runtime(thread_id, on_text, text, model=tally)
            config = {"configurable": {"thread_id": thread_id}}
            error: str | None = None
            try:
                state = self.graph.invoke({"incoming": text}, config,  # type: ignore[call-overload]
                                          context=runtime, durability="exit")
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
            # A deployment that went down since the learner was last told comes first.
            if notices := down_notices(self.engine, self.user_id):
                reply = "\n".join(notices) + "\n\n" + reply
            number = self.threads.record(thread_id, new, error, state.get("project_id"),
                                         turn=turn)
            self.checkpointer.prune([thread_id])
        project_id = state.get("project_id") if state else self.threads.project_of(thread_id)
        return TurnResult(
            thread_id=thread_id, turn=number, reply=reply,
            step=self._step(project_id), project_id=project_id, model=self.name,
            tool_calls=list(state.get("tool_calls", [])) if state else [],
            usage=_usage_totals(calls), cost_usd=_cost_total(calls), error=error)

    def _step(self, project_id: int | None) -> str | None:
        if project_id is None:
            return None
        with session_scope(self.engine) as s:
            project = s.get(Project, project_id)
            return project.step if project else None
