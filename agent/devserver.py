"""Graph runs that the LangGraph server (`langgraph dev`, Studio) starts, not `agent.session`.

The server hands the graph a context dict shaped like `CoachSettings` (user, model, database
URL: JSON only). From it this module opens the store, ensures the learner and builds the
model with the one builder every caller uses (`agent.stack`: metered, budgeted, traced), once
per settings per process; tools and nodes are traced into the same store.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from langgraph.config import get_config
from langgraph.runtime import Runtime
from sqlalchemy import Engine

from agent.context import CoachRuntime, CoachSettings
from agent.settings import Settings
from agent.stack import model_for, user_prices
from memory.store import open_engine
from memory.users import ensure_user
from seam.model import Model
from telemetry.genai import capture_content as content_capture_on
from telemetry.instrument import ToolTracer
from telemetry.tracing import coach_provider
from tools import ToolContext

Node = Callable[[Any, Runtime[Any]], dict[str, Any]]


def runtime_of(runtime: Runtime[Any]) -> CoachRuntime:
    """The Coach passes its CoachRuntime; the LangGraph server passes the published
    `CoachSettings` as a dict (or nothing): then the runtime is built from those settings."""
    if isinstance(runtime.context, CoachRuntime):
        return runtime.context
    dev = _dev_server(**_settings_of(runtime.context))
    thread_id = get_config().get("configurable", {}).get("thread_id")
    ctx = ToolContext(dev.engine, dev.user_id, thread_id,
                      allow_private_urls=dev.settings.allow_private_urls,
                      prices=user_prices(dev.settings))
    return CoachRuntime(engine=dev.engine, user_id=dev.user_id, model=dev.model,
                        thread_id=None if thread_id is None else str(thread_id),
                        tool_context=ctx, run_tool=dev.tools.run)


def _settings_of(context: Any) -> dict[str, str | None]:
    given = context if isinstance(context, dict) else {}
    unknown = set(given) - set(CoachSettings.__annotations__)
    if unknown:
        raise ValueError(f"unknown context field(s) {sorted(unknown)}; the coach's context "
                         f"takes {sorted(CoachSettings.__annotations__)}")
    return {key: (str(given[key]) if given.get(key) else None)
            for key in ("user", "model", "database_url")}


@dataclass(frozen=True)
class DevServer:
    """What a graph run outside `agent.session` uses, opened once per settings."""

    settings: Settings
    engine: Engine
    user_id: int
    model: Model
    tracer: Any
    tools: ToolTracer


def _dev_server(user: str | None, model: str | None, database_url: str | None) -> DevServer:
    """The settings a run names, the COACH_* variables filling the gaps (read per run, so a
    changed environment is seen), and what they open."""
    return _opened(Settings.load(db=database_url, user=user, model=model))


@functools.cache
def _opened(settings: Settings) -> DevServer:
    """The store, learner and model for these settings, opened once per process; the model
    is built like every other (metered, budgeted, traced) and the tools and nodes are
    traced into the same store."""
    engine = open_engine(settings.database_url)
    user_id = ensure_user(engine, settings.user)
    provider = coach_provider(engine)
    return DevServer(settings=settings, engine=engine, user_id=user_id,
                     model=model_for(settings, engine, user_id, purpose="coach",
                                     tracer_provider=provider),
                     tracer=provider.get_tracer("portfolio-coach"),
                     tools=ToolTracer(provider, capture_content=content_capture_on()))


def dev_node_spans(name: str, node: Node) -> Node:
    """Node spans for runs the LangGraph server starts: the provider belongs to the run's
    settings, so it is looked up per run (the Coach wraps its nodes with its own)."""
    attributes = {"coach.node": name, "graph.node.id": name, "openinference.span.kind": "CHAIN"}

    @functools.wraps(node)
    def traced(state: Any, runtime: Runtime[Any]) -> dict[str, Any]:
        if isinstance(runtime.context, CoachRuntime):
            return node(state, runtime)
        tracer = _dev_server(**_settings_of(runtime.context)).tracer
        with tracer.start_as_current_span(f"node {name}", attributes=attributes):
            return node(state, runtime)

    return traced
