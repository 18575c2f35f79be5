"""Telemetry as wrappers: the model, the tool runner and the graph's nodes, wrapped once.

Nothing inside a node or a tool knows about spans. The Coach wraps its model in
`InstrumentedModel`, hands `ToolTracer.run` to the graph as its tool runner, and
compiles the graph with `node_spans(...)`, giving the trace

    invoke_agent coach → node … → chat {model} | execute_tool {name}

`InstrumentedModel` wraps the ledger's `MeteredModel` (see `agent/stack.py`, the one
place the stack is built), so the ledger row is written inside the `chat` span (and
carries its ids) and its price, carried on the response, is the one the span shows.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, TypeVar

from opentelemetry import metrics, trace
from opentelemetry.trace import SpanKind, StatusCode

from seam.model import Model, ModelError, ModelRequest, ModelResponse, WrapperModel
from telemetry import genai
from telemetry.metrics import ModelMetrics
from tools.base import Tool, ToolContext, ToolResult
from tools.gates import GATE_TOOL

F = TypeVar("F", bound=Callable[..., Any])


def _error_type(exc: BaseException) -> str:
    return exc.kind if isinstance(exc, ModelError) else type(exc).__qualname__


@contextmanager
def record_redacted(span: trace.Span) -> Iterator[None]:
    """What the SDK's automatic exception record would say, with secrets taken out and no
    stack trace: a traceback can quote an upstream error (a gateway echoing the API key).
    Spans using it are opened with record_exception=False, set_status_on_exception=False."""
    try:
        yield
    except BaseException as exc:
        message = genai.redact(str(exc))
        span.add_event("exception", {"exception.type": type(exc).__qualname__,
                                     "exception.message": message})
        span.set_status(StatusCode.ERROR, f"{type(exc).__name__}: {message}")
        raise


class InstrumentedModel(WrapperModel):
    """A model whose every call is a `chat {model}` CLIENT span plus GenAI metrics."""

    def __init__(self, inner: Model, tracer_provider: trace.TracerProvider,
                 meter_provider: metrics.MeterProvider | None = None, *,
                 capture_content: bool = False, user: str | None = None,
                 redactor: genai.Redactor | None = None, purpose: str = "coach"):
        super().__init__(inner)
        # What calls are for unless a request says otherwise (a drafter sharing the
        # coach's stack says `postmortem`): the ledger, spans and metrics read it.
        self.purpose = purpose
        self.tracer = tracer_provider.get_tracer("portfolio-coach")
        self.metrics = ModelMetrics(meter_provider or metrics.NoOpMeterProvider())
        self.capture_content = capture_content
        self.user = user
        self.redact = redactor or genai.Redactor()

    def complete(self, request: ModelRequest) -> ModelResponse:
        if not request.metadata.get("purpose"):
            request = replace(request, metadata={**request.metadata, "purpose": self.purpose})
        meta = request.metadata
        base = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": self.provider,
                "gen_ai.request.model": self.name}
        address = self.server_address
        if address:
            base["server.address"] = address
        attributes = {**base, **self._request_attributes(request)}
        started = time.perf_counter()
        with self.tracer.start_as_current_span(
                f"chat {self.name}", kind=SpanKind.CLIENT, attributes=attributes,
                record_exception=False, set_status_on_exception=False) as span:
            try:
                response = self.inner.complete(request)
            except Exception as exc:
                kind = _error_type(exc)
                span.set_attribute("error.type", kind)
                span.set_status(StatusCode.ERROR, self.redact(str(exc)))
                self.metrics.record({**base, "error.type": kind},
                                    time.perf_counter() - started, None, None,
                                    meta["purpose"])
                raise
            cost = response.cost_usd
            span.set_attributes(self._response_attributes(response, cost,
                                                          response.ledger_id is not None))
            if self.capture_content:
                span.set_attribute("gen_ai.output.messages", self.redact.json(
                    [genai.message("assistant", response.content, response.stop_reason)]))
                # Phoenix shows output.value as the call's Output: the reply, not the envelope.
                span.set_attributes(genai.io_attributes(
                    self.redact, genai.input_messages(request.messages),
                    genai.reply_text(response.content) or genai.input_messages(
                        [{"role": "assistant", "content": response.content}])))
        # Estimated tokens (the offline coach) never reach the token-usage metric.
        self.metrics.record({**base, "gen_ai.response.model": response.model or self.name},
                            time.perf_counter() - started,
                            None if response.estimated else response.usage, cost,
                            meta["purpose"])
        return response

    def _request_attributes(self, request: ModelRequest) -> dict[str, Any]:
        meta = request.metadata
        out: dict[str, Any] = {
            "gen_ai.request.max_tokens": request.max_tokens,
            "openinference.span.kind": "LLM", "llm.model_name": self.name,
            "llm.provider": self.provider, "coach.purpose": meta["purpose"],
        }
        user = self.user or meta.get("user_id")
        if user is not None:
            out["user.id"] = str(user)
        if meta.get("thread_id"):
            out["gen_ai.conversation.id"] = out["session.id"] = meta["thread_id"]
        if meta.get("project_id") is not None:
            out["coach.project.id"] = meta["project_id"]
        if meta.get("step"):
            out["coach.step"] = meta["step"]
        if self.capture_content:
            out["gen_ai.system_instructions"] = self.redact.json(
                genai.system_instructions(request.system))
            out["gen_ai.input.messages"] = self.redact.json(
                genai.input_messages(request.messages))
        return out

    @staticmethod
    def _response_attributes(response: ModelResponse, cost: Any,
                             priced: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "gen_ai.response.id": response.id, "gen_ai.response.model": response.model,
            "gen_ai.response.finish_reasons": [response.stop_reason],
            **usage_attributes(response),
        }
        if response.request_id:
            out["coach.request_id"] = response.request_id
        if cost is not None:
            out["llm.cost.total"] = float(cost)
            # Langfuse takes an explicit cost over the one it would infer from its own table.
            out[LANGFUSE_COST] = json.dumps({"total": float(cost)})
        elif priced:
            out["coach.cost.unknown"] = True  # not in the price table: unknown, never $0
        return out


# Langfuse's own observation attributes (its OpenTelemetry property mapping): they win over
# the gen_ai.* ones it would otherwise read, so usage and cost are exactly the coach's.
LANGFUSE_TYPE = "langfuse.observation.type"
LANGFUSE_MODEL = "langfuse.observation.model.name"
LANGFUSE_USAGE = "langfuse.observation.usage_details"
LANGFUSE_COST = "langfuse.observation.cost_details"
ESTIMATED_INPUT = "coach.usage.estimated.input_tokens"
ESTIMATED_OUTPUT = "coach.usage.estimated.output_tokens"


def usage_attributes(response: ModelResponse) -> dict[str, Any]:
    """Token counts under the names each backend reads, for real usage only.

    The offline coach's counts are estimates: they go under the coach's own names, never
    `gen_ai.usage.*` or `llm.token_count.*`, so no dashboard adds them to real usage."""
    u = response.usage
    if response.estimated:
        return {"coach.usage.estimated": True, ESTIMATED_INPUT: u.prompt_tokens,
                ESTIMATED_OUTPUT: u.output_tokens}
    return {
        # For Anthropic, input_tokens excludes the cache: the convention's input is all three.
        "gen_ai.usage.input_tokens": u.prompt_tokens,
        "gen_ai.usage.output_tokens": u.output_tokens,
        "gen_ai.usage.cache_read.input_tokens": u.cache_read_input_tokens,
        "gen_ai.usage.cache_creation.input_tokens": u.cache_creation_input_tokens,
        "llm.token_count.prompt": u.prompt_tokens,
        "llm.token_count.completion": u.output_tokens,
        "llm.token_count.total": u.prompt_tokens + u.output_tokens,
        "llm.token_count.prompt_details.cache_read": u.cache_read_input_tokens,
        "llm.token_count.prompt_details.cache_write": u.cache_creation_input_tokens,
        # Langfuse adds up every key containing "input": uncached input plus the two cache
        # keys is the whole prompt, counted once.
        LANGFUSE_TYPE: "generation", LANGFUSE_MODEL: response.model or "",
        LANGFUSE_USAGE: json.dumps({
            "input": u.input_tokens, "input_cache_read": u.cache_read_input_tokens,
            "input_cache_creation": u.cache_creation_input_tokens,
            "output": u.output_tokens}),
    }


class ToolTracer:
    """Runs a tool call inside an `execute_tool {name}` span; the graph's tool runner."""

    def __init__(self, tracer_provider: trace.TracerProvider, *, capture_content: bool = False,
                 redactor: genai.Redactor | None = None):
        self.tracer = tracer_provider.get_tracer("portfolio-coach")
        self.capture_content = capture_content
        self.redact = redactor or genai.Redactor()

    def run(self, tool: Tool, ctx: ToolContext, use: dict[str, Any]) -> ToolResult:
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": tool.name,
            "gen_ai.tool.type": "function", "openinference.span.kind": "TOOL",
            "tool.name": tool.name,
        }
        if use.get("id"):
            attributes["gen_ai.tool.call.id"] = use["id"]
        if self.capture_content:
            attributes["gen_ai.tool.call.arguments"] = self.redact.json(use.get("input"))
        with self.tracer.start_as_current_span(
                f"execute_tool {tool.name}", attributes=attributes, record_exception=False,
                set_status_on_exception=False) as span, record_redacted(span):
            result = tool(ctx, use.get("input"))
            span.set_attribute("coach.tool.outcome", "ok" if result.ok else "error")
            if result.replayed:  # answered from the call's record: no second effect
                span.set_attribute("coach.tool.replayed", True)
            if not result.ok:
                span.set_attribute("error.type", "tool_error")
                span.set_status(StatusCode.ERROR, self.redact(str(result.content.get("error",
                                                                                    ""))))
            elif tool.name == GATE_TOOL:
                span.set_attributes(gate_attributes(result.content))
            if self.capture_content:
                span.set_attribute("gen_ai.tool.call.result", self.redact(result.text()))
            return result


def gate_attributes(content: dict[str, Any]) -> dict[str, Any]:
    """What the gate decided: advanced, or blocked with what is missing."""
    out: dict[str, Any] = {"coach.gate.decision": "advanced" if content.get("ok") else "blocked"}
    if content.get("step"):
        out["coach.gate.step"] = str(content["step"])
    # Only which requirements are missing: their messages quote learner URLs and paths,
    # which are content and stay out of spans unless content capture is on.
    gate = content.get("gate") or {}
    missing = [str(m.get("field")) for m in gate.get("missing") or [] if isinstance(m, dict)]
    if missing:
        out["coach.gate.missing"] = missing
    return out


def node_spans(tracer_provider: trace.TracerProvider) -> Callable[[str, F], F]:
    """A wrapper for graph nodes: one child span per node run, applied where the graph is
    built, so node bodies stay free of span code."""
    tracer = tracer_provider.get_tracer("portfolio-coach")

    def wrap(name: str, node: F) -> F:
        attributes = {"coach.node": name, "graph.node.id": name,
                      "openinference.span.kind": "CHAIN"}

        # functools.wraps keeps the signature LangGraph reads to inject `runtime`.
        @functools.wraps(node)
        def traced(*args: Any, **kwargs: Any) -> Any:
            with tracer.start_as_current_span(
                    f"node {name}", attributes=attributes, record_exception=False,
                    set_status_on_exception=False) as span, record_redacted(span):
                return node(*args, **kwargs)

        return traced  # type: ignore[return-value]

    return wrap
