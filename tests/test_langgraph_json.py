"""`langgraph.json` names a graph factory the LangGraph dev server can load and run.

The server always hands the graph a context dict (Studio's "context" form, or `{}`), so the
test does too: a run with `context=None` would miss what the server really does."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from sqlmodel import select

from memory.models import LedgerEntry, Project
from memory.store import open_engine, session_scope

ROOT = Path(__file__).resolve().parent.parent


def load_factory():
    spec = json.loads((ROOT / "langgraph.json").read_text())
    path, name = spec["graphs"]["coach"].split(":")
    module_spec = importlib.util.spec_from_file_location("coach_graph", ROOT / path)
    assert module_spec and module_spec.loader
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    graph = getattr(module, name)()
    # The dev server brings its own checkpointer; InMemorySaver stands in for it here.
    graph.checkpointer = InMemorySaver()
    return graph


@pytest.mark.parametrize("context", [{}, None])
def test_the_named_factory_coaches_with_the_context_the_server_sends(coach_home, context):
    graph = load_factory()
    config = {"configurable": {"thread_id": "dev-1"}}
    state = graph.invoke({"incoming": "Title: Dev Server"}, config, context=context)
    reply = state["messages"][-1]["content"][0]["text"]
    assert "Started project #1" in reply and state["project_id"] == 1
    assert (Path(coach_home) / "coach.db").exists()


def test_the_context_names_the_learner_model_and_store(tmp_path):
    db = f"sqlite:///{tmp_path / 'dev.db'}"
    graph = load_factory()
    config = {"configurable": {"thread_id": "dev-2"}}
    context = {"user": "studio-ann", "model": "offline", "database_url": db}
    graph.invoke({"incoming": "Title: From Studio"}, config, context=context)
    second = graph.invoke({"incoming": "status"}, config, context=context)
    assert second["project_id"] == 1  # the second turn saw the first
    engine = open_engine(db)
    try:
        with session_scope(engine) as s:
            [project] = s.exec(select(Project)).all()
            rows = s.exec(select(LedgerEntry)).all()
        assert project.title == "From Studio"
        # Metered like every other model call: one ledger row per call, for this learner.
        assert rows and {r.user_id for r in rows} == {project.user_id}
        assert {r.purpose for r in rows} == {"coach"} and all(r.estimated for r in rows)
    finally:
        engine.dispose()


def test_the_published_schemas_carry_only_json(coach_home):
    graph = load_factory()
    context = graph.get_context_jsonschema()
    assert set(context["properties"]) == {"user", "model", "database_url"}
    assert all(p["type"] == "string" for p in context["properties"].values())
    assert graph.get_input_jsonschema()["required"] == ["incoming"]
    assert "messages" in graph.get_output_jsonschema()["properties"]


def test_an_unknown_context_field_is_refused_clearly(coach_home):
    graph = load_factory()
    with pytest.raises(ValueError, match="unknown context field"):
        graph.invoke({"incoming": "hi"}, {"configurable": {"thread_id": "dev-3"}},
                     context={"engine": "x"})
