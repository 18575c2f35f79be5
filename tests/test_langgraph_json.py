"""`langgraph.json` names a graph factory the LangGraph dev server can load and run."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from langgraph.checkpoint.memory import InMemorySaver

ROOT = Path(__file__).resolve().parent.parent


def test_the_named_factory_builds_a_graph_that_coaches_without_a_context(coach_home):
    spec = json.loads((ROOT / "langgraph.json").read_text())
    path, name = spec["graphs"]["coach"].split(":")
    module_spec = importlib.util.spec_from_file_location("coach_graph", ROOT / path)
    assert module_spec and module_spec.loader
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    graph = getattr(module, name)()
    # The dev server brings its own checkpointer; InMemorySaver stands in for it here.
    graph.checkpointer = InMemorySaver()
    config = {"configurable": {"thread_id": "dev-1"}}
    state = graph.invoke({"incoming": "Title: Dev Server"}, config)
    reply = state["messages"][-1]["content"][0]["text"]
    assert "Started project #1" in reply and state["project_id"] == 1
    assert (Path(coach_home) / "coach.db").exists()
