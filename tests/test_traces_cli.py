"""`coach traces list|show` and `coach prune`, run as the real executable."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from evals.messages_api import MessagesAPI, error
from tests.learner import coach_env, json_turns, lines_in, one_error_line, run_coach, run_together

pytestmark = pytest.mark.slow

MESSAGES = ["Title: Handover Helper", "status", "next"]


@pytest.fixture
def env(coach_home) -> dict[str, str]:
    return coach_env(coach_home)


@pytest.fixture
def db(tmp_path) -> str:
    return str(tmp_path / "coach.db")


def coach(db: str, env: dict[str, str], *args: str, user: str = "ada",
          stdin: str | None = None) -> Any:
    return run_coach("--db", db, "--user", user, *args, env=env, stdin=stdin)


def chat(db: str, env: dict[str, str], messages: list[str], **kw: Any) -> list[dict[str, Any]]:
    done = coach(db, env, "chat", "--json", stdin=lines_in(messages), **kw)
    assert done.returncode == 0, done.stderr
    return json_turns(done.stdout)


def query(db: str, sql: str, *params: object) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(db)) as conn:
        return conn.execute(sql, params).fetchall()


def test_list_and_show_find_every_turn_of_coach_chat(db, env):
    turns = chat(db, env, MESSAGES)
    listed, limited, tree, spans, other_user = run_together(
        ("--db", db, "--user", "ada", "traces", "list", "--json"),
        ("--db", db, "--user", "ada", "traces", "list", "--limit", "1", "--json"),
        ("--db", db, "--user", "ada", "traces", "show", turns[0]["trace_id"]),
        ("--db", db, "--user", "ada", "traces", "show", turns[0]["trace_id"], "--json"),
        ("--db", db, "--user", "bob", "traces", "show", turns[0]["trace_id"]), env=env)

    assert listed.returncode == 0, listed.stderr
    [shown] = json_turns(listed.stdout)
    traces = shown["traces"]  # the shape GET /api/traces answers
    assert [t["trace_id"] for t in traces] == [t["trace_id"] for t in reversed(turns)]
    for trace, turn in zip(traces, reversed(turns), strict=True):
        ledger = query(db, "SELECT COUNT(*), SUM(input_tokens), SUM(output_tokens), "
                           "SUM(cost_usd) FROM ledger WHERE trace_id = ?", trace["trace_id"])
        calls, input_tokens, output_tokens, cost = ledger[0]
        assert trace["model_calls"] == calls >= 1
        # Offline: the counts are estimates, shown apart from (zero) real usage.
        assert trace["input_tokens"] == trace["output_tokens"] == 0
        assert trace["estimated_input_tokens"] == input_tokens == turn["usage"]["input_tokens"]
        assert trace["estimated_output_tokens"] == output_tokens == \
            turn["usage"]["output_tokens"]
        assert trace["cost_usd"] == cost == turn["cost_usd"] == 0
        assert trace["thread_id"] == turn["thread_id"] and trace["error"] is False
        assert trace["duration_ms"] > 0 and trace["start_time"].endswith("+00:00")
    [newest] = json_turns(limited.stdout)[0]["traces"]
    assert newest["trace_id"] == turns[-1]["trace_id"]

    assert tree.returncode == 0, tree.stderr
    for text in ("invoke_agent coach", "node listen", "node tools", "chat offline",
                 "execute_tool create_project", " in / ~", " out tokens (estimated)",
                 "$0.000000", " ms",
                 turns[0]["trace_id"]):
        assert text in tree.stdout, (text, tree.stdout)

    assert spans.returncode == 0, spans.stderr
    [one] = json_turns(spans.stdout)
    assert one["trace_id"] == turns[0]["trace_id"] and one["model_calls"] >= 1
    rows = one["spans"]  # the shape GET /api/traces/{trace_id} answers
    by_id = {s["span_id"]: s for s in rows}
    [root] = [s for s in rows if s["parent_id"] is None]
    assert root["name"] == "invoke_agent coach"
    assert all(s["trace_id"] == turns[0]["trace_id"] for s in rows)
    assert all(s["parent_id"] in by_id for s in rows if s["parent_id"])
    assert {"span_id", "parent_id", "name", "kind", "start_time", "end_time", "duration_ms",
            "status", "attributes"} <= set(root)

    assert other_user.returncode == 1
    assert "no trace" in one_error_line(other_user.stderr)


def test_a_failed_turn_is_flagged_and_its_error_shown(db, env):
    with MessagesAPI() as api:
        api.queue(error(400, "invalid_request_error", "scripted failure"))
        claude_env = {**env, "ANTHROPIC_API_KEY": "test-key", "ANTHROPIC_BASE_URL": api.base_url}
        done = coach(db, claude_env, "--model", "claude-sonnet-5-5", "chat", "--json",
                     stdin=lines_in(["hello"]))
    [turn] = json_turns(done.stdout)
    assert turn["error"]
    listed = coach(db, env, "traces", "list", "--json")
    [trace] = json_turns(listed.stdout)[0]["traces"]
    assert trace["trace_id"] == turn["trace_id"] and trace["error"] is True
    assert trace["model_calls"] == 1 and trace["input_tokens"] == 0
    tree = coach(db, env, "traces", "show", turn["trace_id"])
    shown = " ".join(tree.stdout.split())  # as read, whatever the terminal's wrapping
    assert "chat claude-sonnet-5-5" in shown
    assert "error invalid_request_error: the request was invalid: scripted failure" in shown
    text_list = coach(db, env, "traces", "list")
    assert turn["trace_id"] in text_list.stdout and "error" in text_list.stdout


def test_unknown_ids_empty_lists_and_bad_options(db, env):
    unknown, empty, empty_text, bad_limit, no_days, negative = run_together(
        ("--db", db, "--user", "ada", "traces", "show", "0" * 32),
        ("--db", db, "--user", "ada", "traces", "list", "--json"),
        ("--db", db, "--user", "ada", "traces", "list"),
        ("--db", db, "--user", "ada", "traces", "list", "--limit", "0"),
        ("--db", db, "--user", "ada", "prune"),
        ("--db", db, "--user", "ada", "prune", "--keep-days", "-1"), env=env)
    assert unknown.returncode == 1 and "no trace" in one_error_line(unknown.stderr)
    assert empty.returncode == 0
    assert json_turns(empty.stdout) == [{"traces": [], "next_cursor": None}]
    assert empty_text.returncode == 0 and "No traces yet" in empty_text.stdout
    assert (bad_limit.returncode, no_days.returncode, negative.returncode) == (2, 2, 2)


def test_prune_keeps_recent_spans_and_deletes_old_ones(db, env):
    turns = chat(db, env, MESSAGES[:2])
    total = query(db, "SELECT COUNT(*) FROM spans")[0][0]
    assert total > 0
    kept = coach(db, env, "prune", "--keep-days", "30", "--json")
    assert kept.returncode == 0, kept.stderr
    assert json_turns(kept.stdout) == [{"deleted_spans": 0, "deleted_received_spans": 0,
                                         "keep_days": 30}]
    # Age the first turn's spans by 40 days.
    with closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("UPDATE spans SET start_time = datetime(start_time, '-40 days') "
                     "WHERE trace_id = ?", (turns[0]["trace_id"],))
    aged = query(db, "SELECT COUNT(*) FROM spans WHERE trace_id = ?", turns[0]["trace_id"])[0][0]
    pruned = coach(db, env, "prune", "--keep-days", "30", "--json")
    assert json_turns(pruned.stdout) == [{"deleted_spans": aged, "deleted_received_spans": 0,
                                           "keep_days": 30}]
    listed = coach(db, env, "traces", "list", "--json")
    assert [t["trace_id"] for t in json_turns(listed.stdout)[0]["traces"]] == [turns[1]["trace_id"]]
    text = coach(db, env, "prune", "--keep-days", "0")
    assert text.returncode == 0 and text.stdout.startswith("deleted ")
    assert query(db, "SELECT COUNT(*) FROM spans")[0][0] == 0
    assert Path(db).exists()
