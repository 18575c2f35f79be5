"""The six-step coach as a LangGraph state machine.

    listen → coach ─┬─> tools ─┬─> gate ─> coach
                    │          └────────> coach
                    ├─> gate ──────────> coach
                    └─> END

`listen` takes the learner's message into a bounded window; `coach` calls the
model with the current step's instructions and tools; `tools` runs the tool calls
that gather facts and evidence; `gate` runs `advance_step`, the only way a step
changes. The module exports the uncompiled builder so callers choose the
checkpointer.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Literal

from langgraph.graph import START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime

from agent.context import (
    CoachRuntime,
    CoachSettings,
    active_project_id,
    coach_view,
    opening_project_id,
)
from agent.devserver import dev_node_spans as _dev_node_spans
from agent.devserver import runtime_of as _runtime
from agent.state import CoachInput, CoachState
from agent.steps import SYSTEM_PROMPT, instructions, step_tools
from memory.vocabulary import DONE
from seam.model import Block, Message, ModelRequest, is_learner_text, text_of
from tools import TOOLS
from tools.gates import GATE_TOOL

Node = Callable[[CoachState, Runtime[Any]], dict[str, Any]]
SUMMARY_LINES = 12


def turn_starts(messages: list[Message]) -> list[int]:
    return [i for i, m in enumerate(messages) if is_learner_text(m)]


def complete_turns(messages: list[Message]) -> list[Message]:
    """Drop a trailing turn that never reached a final reply (a failed turn)."""
    for i in range(len(messages) - 1, -1, -1):
        m = messages[i]
        if m["role"] == "assistant" and not any(
                b.get("type") == "tool_use" for b in m["content"]):
            return messages[: i + 1]
    return []


def fold(messages: list[Message], summary: str, keep_turns: int) -> tuple[list[Message], str]:
    """Once the window holds twice `keep_turns` turns, keep the last `keep_turns` and fold
    the older ones into summary lines. Folding in chunks, not every turn, keeps the
    conversation prefix unchanged between folds, which is what prompt caching needs."""
    starts = turn_starts(messages)
    if len(starts) < 2 * keep_turns:
        return messages, summary
    cut = starts[-keep_turns]
    lines = summary.splitlines() if summary else []
    for a, b in zip(starts, [*starts[1:], len(messages)], strict=False):
        if a >= cut:
            break
        learner = " ".join(text_of(messages[a]).split())[:120]
        reply = " ".join(text_of(messages[b - 1]).split())[:160]
        lines.append(f"- learner: {learner} | coach: {reply}")
    return messages[cut:], "\n".join(lines[-SUMMARY_LINES:])


def listen(state: CoachState, runtime: Runtime[Any]) -> dict[str, Any]:
    rt = _runtime(runtime)
    window, summary = fold(complete_turns(state.get("messages") or []),
                           state.get("summary", ""), rt.window_turns)
    project_id = state.get("project_id")
    if project_id is None:
        project_id = opening_project_id(rt)
    view = coach_view(rt, project_id)["project"]
    if view is not None and view["step"] == DONE:
        # The project was finished (perhaps in another thread): coach the next one.
        project_id = active_project_id(rt) or view["id"]
    incoming = {"role": "user", "content": [{"type": "text", "text": state["incoming"]}]}
    return {"messages": [*window, incoming], "summary": summary, "project_id": project_id,
            "turn_start": len(window), "calls": 0, "tool_calls": [], "gate": None}


def system_prompt(step: str | None, summary: str) -> str:
    """Stable across the calls of a step, so a model can cache it; the coach's records,
    which change with every call, travel in `ModelRequest.records` instead."""
    parts = [SYSTEM_PROMPT, instructions(step)]
    if summary:
        parts.append("Earlier in this conversation:\n" + summary)
    return "\n\n".join(parts)


def coach(state: CoachState, runtime: Runtime[Any]) -> dict[str, Any]:
    rt = _runtime(runtime)
    view = coach_view(rt, state.get("project_id"))
    project = view.get("project")
    step = project["step"] if project else None
    request = ModelRequest(
        system=system_prompt(step, state.get("summary", "")),
        messages=state["messages"],
        tools=[TOOLS[name].schema() for name in step_tools(step)],
        max_tokens=rt.max_tokens,
        records=view,
        metadata={"user_id": rt.user_id, "thread_id": rt.thread_id, "purpose": rt.purpose,
                  "project_id": project["id"] if project else None, "step": step,
                  **rt.extra_metadata},
        on_text=rt.on_text,
    )
    response = rt.model.complete(request)
    content = response.content
    calls = state.get("calls", 0) + 1
    uses = [b for b in content if b.get("type") == "tool_use"]
    if uses and (response.stop_reason == "refusal" or calls >= rt.max_model_calls):
        # Run no tool from a refusal, and stop a turn that keeps calling tools.
        content = [b for b in content if b.get("type") != "tool_use"] or [
            {"type": "text", "text": "I stopped here to keep this turn short. Say `status` "
                                     "to see where things stand."}]
    return {"messages": [*state["messages"], {"role": "assistant", "content": content}],
            "calls": calls}


def _pending(state: CoachState) -> list[Block]:
    last = state["messages"][-1]
    if last["role"] != "assistant":
        return []
    return [b for b in last["content"] if b.get("type") == "tool_use"]


def after_coach(state: CoachState) -> Literal["tools", "gate", "__end__"]:
    uses = _pending(state)
    if not uses:
        return "__end__"
    return "tools" if any(u["name"] != GATE_TOOL for u in uses) else "gate"


def _run(state: CoachState, rt: CoachRuntime, uses: list[Block]) -> dict[str, Any]:
    """Run tool calls and answer each with exactly one tool_result."""
    view = coach_view(rt, state.get("project_id"))["project"]
    allowed = step_tools(view["step"] if view else None)
    messages = state["messages"]
    if messages[-1]["role"] == "assistant":
        messages = [*messages, {"role": "user", "content": []}]
    results: list[Block] = list(messages[-1]["content"])
    log = list(state.get("tool_calls", []))
    project_id = state.get("project_id")
    gate = state.get("gate")
    for use in uses:
        tool = TOOLS.get(use["name"])
        if tool is None or use["name"] not in allowed:
            where = f"at step {view['step']}" if view else "before a project exists"
            ok, text = False, json.dumps({"error": f"{use['name']} is not available {where}",
                                          "available": list(allowed)})
        else:
            result = rt.run_tool(tool, rt.tools().for_call(use.get("id"), tool.name), use)
            ok, text = result.ok, result.text()
            if result.opened_project is not None:
                project_id = result.opened_project
            if use["name"] == GATE_TOOL:
                gate = result.content
        results.append({"type": "tool_result", "tool_use_id": use["id"], "content": text,
                        "is_error": not ok})
        log.append({"name": use["name"], "input": use.get("input"), "ok": ok})
    messages = [*messages[:-1], {"role": "user", "content": results}]
    return {"messages": messages, "tool_calls": log, "project_id": project_id, "gate": gate}


def run_tools(state: CoachState, runtime: Runtime[Any]) -> dict[str, Any]:
    return _run(state, _runtime(runtime),
                [u for u in _pending(state) if u["name"] != GATE_TOOL])


def after_tools(state: CoachState) -> Literal["gate", "coach"]:
    last_assistant = state["messages"][-2]
    uses = [b for b in last_assistant["content"] if b.get("type") == "tool_use"]
    return "gate" if any(u["name"] == GATE_TOOL for u in uses) else "coach"


def gate(state: CoachState, runtime: Runtime[Any]) -> dict[str, Any]:
    messages = state["messages"]
    assistant = messages[-1] if messages[-1]["role"] == "assistant" else messages[-2]
    uses = [b for b in assistant["content"]
            if b.get("type") == "tool_use" and b["name"] == GATE_TOOL]
    return _run(state, _runtime(runtime), uses)


def build_graph(wrap: Callable[[str, Node], Node] | None = None,
                ) -> StateGraph[CoachState, Any, CoachInput, CoachState]:
    """`wrap(name, node)` decorates every node in one place (the Coach adds a span each).

    The published context schema is `CoachSettings` (JSON settings only); the Coach passes
    its `CoachRuntime` object instead, which LangGraph hands to the nodes as it is."""
    builder = StateGraph(CoachState, context_schema=CoachSettings, input_schema=CoachInput)
    nodes: dict[str, Any] = {"listen": listen, "coach": coach, "tools": run_tools, "gate": gate}
    for name, node in nodes.items():
        action: Any = wrap(name, node) if wrap else node
        builder.add_node(name, action)
    builder.add_edge(START, "listen")
    builder.add_edge("listen", "coach")
    builder.add_conditional_edges("coach", after_coach)
    builder.add_conditional_edges("tools", after_tools)
    builder.add_edge("gate", "coach")
    return builder


def make_graph(config: Any = None) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The factory `langgraph.json` names; the server supplies the checkpointer, and the
    store, learner and model come from the run's context (`CoachSettings`), else from the
    COACH_* variables. (The transcript and the thread lease belong to `agent.session`,
    which the dev server does not use.)"""
    return build_graph(wrap=_dev_node_spans).compile()
