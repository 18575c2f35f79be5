"""Claude and the playbook, through the real anthropic SDK and the local Messages-API server:
`search_playbook` is offered at every step, called, and its result grounds the reply."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from agent.steps import instructions, step_tools
from evals.messages_api import MessagesAPI, text_reply, tool_reply
from memory.models import Project
from playbook import STEPS
from tests.test_claude import claude_coach, create_project_turn, rows
from tools import TOOLS

QUESTION = "what is an eval? is it like a unit test?"


@pytest.fixture
def server() -> Iterator[MessagesAPI]:
    with MessagesAPI() as api:
        yield api


def grounded_reply(body: dict[str, Any]) -> dict[str, Any]:
    """What a model does with the tool result: answer from the first entry, naming it."""
    results = [b for b in body["messages"][-1]["content"] if b.get("type") == "tool_result"]
    entry = json.loads(results[0]["content"])["entries"][0]
    return text_reply(f"From the playbook entry “{entry['title']}”: "
                      f"{entry['text'].split('. ')[0]}. Try this: {entry['try_this']}")


def test_search_playbook_is_offered_at_every_step_and_before_a_project() -> None:
    assert "search_playbook" in step_tools(None)
    for step in STEPS:
        assert "search_playbook" in step_tools(step), step
        assert "Good evidence:" in instructions(step) and "Push back on:" in instructions(step)
    schema = TOOLS["search_playbook"].schema()
    assert schema["input_schema"]["required"] == ["query"]
    assert "name the entry" in schema["description"]


def test_claude_calls_search_playbook_and_its_result_grounds_the_reply(sqlite_url, server):
    with claude_coach(sqlite_url, server) as coach:
        thread = coach.thread()
        project_id = create_project_turn(coach, server, thread).project_id
        before = [p.model_dump() for p in rows(coach.engine, Project)]
        server.queue(tool_reply("search_playbook", {"query": QUESTION, "step": "build"}),
                     grounded_reply)
        result = coach.turn(thread, QUESTION)

    assert result.error is None
    assert [(c["name"], c["ok"]) for c in result.tool_calls] == [("search_playbook", True)]
    asked, answered = server.message_requests[-2:]
    assert "search_playbook" in [t["name"] for t in asked["tools"]]
    system = "".join(b["text"] for b in asked["system"])
    assert "call search_playbook" in system and "name the entry" in system
    tool_result = next(b for b in answered["messages"][-1]["content"]
                       if b.get("type") == "tool_result")
    assert tool_result["is_error"] is False
    entries = json.loads(tool_result["content"])["entries"]
    assert entries[0]["id"] == "evals-vs-unit-tests"
    assert {"id", "title", "text", "try_this"} <= set(entries[0])
    assert "From the playbook entry “Evals versus unit tests”" in result.reply
    assert entries[0]["try_this"] in result.reply
    # Asking a question changed nothing about the project.
    assert [p.model_dump() for p in rows(coach.engine, Project)] == before
    assert result.project_id == project_id


def test_bad_search_arguments_come_back_as_an_error_the_model_can_read(sqlite_url, server):
    with claude_coach(sqlite_url, server) as coach:
        thread = coach.thread()
        create_project_turn(coach, server, thread)
        server.queue(tool_reply("search_playbook", {"query": "x", "step": "ship"}),
                     text_reply("Let me try that again."))
        result = coach.turn(thread, "how do evals work?")
    assert [(c["name"], c["ok"]) for c in result.tool_calls] == [("search_playbook", False)]
    tool_result = next(b for b in server.message_requests[-1]["messages"][-1]["content"]
                       if b.get("type") == "tool_result")
    assert tool_result["is_error"] is True
    assert "invalid arguments for search_playbook" in tool_result["content"]
