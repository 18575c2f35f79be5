"""What the graph's nodes get from outside: the store, the model, the learner."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from typing_extensions import TypedDict

from memory.models import Project, Thread
from memory.store import session_scope
from seam.model import Model
from tools import ToolContext
from tools.base import Tool, ToolResult
from tools.projects import active_project_id as active_project
from tools.projects import project_view


def call_tool(tool: Tool, ctx: ToolContext, use: dict[str, Any]) -> ToolResult:
    """Run one tool_use block; the Coach swaps in a traced runner (telemetry.instrument)."""
    return tool(ctx, use.get("input"))


class CoachSettings(TypedDict, total=False):
    """The graph's published context schema: only settings that travel as JSON.

    The LangGraph server (and Studio) hands the graph a context dict built from this; the
    graph opens the store and builds the model from it (`agent.graph`). Leaving a field out
    falls back to COACH_USER / COACH_MODEL / COACH_DATABASE_URL, as the CLI does. An engine
    or a model object never appears here: the server could not publish or send it."""

    user: str           # the learner's name
    model: str          # `offline` or an Anthropic model id
    database_url: str   # SQLAlchemy URL of the coach's store


@dataclass
class CoachRuntime:
    engine: Engine
    user_id: int
    model: Model
    thread_id: str | None = None
    tool_context: ToolContext | None = None
    # How many complete turns the window keeps before they fold into the summary.
    window_turns: int = 6
    max_model_calls: int = 8
    max_tokens: int = 2048
    # What the coach's calls are for in the ledger: `coach`, or `eval` in a paid eval run.
    purpose: str = "coach"
    on_text: Callable[[str], None] | None = None
    extra_metadata: dict[str, Any] = field(default_factory=dict)
    run_tool: Callable[[Tool, ToolContext, dict[str, Any]], ToolResult] = call_tool

    def tools(self) -> ToolContext:
        if self.tool_context is None:
            self.tool_context = ToolContext(self.engine, self.user_id, self.thread_id)
        return self.tool_context


def active_project_id(rt: CoachRuntime) -> int | None:
    """The learner's most recent project that is not done yet."""
    with session_scope(rt.engine) as s:
        return active_project(s, rt.user_id)


def opening_project_id(rt: CoachRuntime) -> int | None:
    """The project a thread coaches from its first turn: the one active when the thread was
    opened (recorded on the thread then, so two new threads do not race for it)."""
    with session_scope(rt.engine) as s:
        thread = s.get(Thread, rt.thread_id) if rt.thread_id else None
        if thread is not None:
            return thread.project_id
    return active_project_id(rt)  # a graph run without a session (the dev server)


def coach_view(rt: CoachRuntime, project_id: int | None) -> dict[str, Any]:
    """The coach's view of the learner, fresh for every model call."""
    if project_id is None:
        return {"project": None}
    with session_scope(rt.engine) as s:
        project = s.get(Project, project_id)
        if project is None or project.user_id != rt.user_id:
            return {"project": None}
        return {"project": project_view(s, project)}
