"""The coach's OTLP read back by a real Arize Phoenix, through Phoenix's own REST API.

Phoenix (`arize-phoenix`, about 850 MB installed; 299 s to install here) lives in its own
environment, .venv-phoenix, which `make interop` builds and then runs this file; `make test`
does not, so CI stays within its time. The server is started on 127.0.0.1 with telemetry off
and its data in a temporary folder. One Claude turn (through the local Messages-API server,
with prompt-cache usage) and one offline turn are sent with content capture on; Phoenix
must show the span tree and kinds, Claude's token and cache counts, the root's input and
output, and no real-usage counts for the offline coach's estimates.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from evals.messages_api import MessagesAPI, text_reply, tool_reply
from evals.serving import free_port
from tests.learner import coach_env, json_turns, lines_in, run_coach

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
PHOENIX_VENV = Path(os.environ.get("COACH_PHOENIX_VENV") or ROOT / ".venv-phoenix")
PHOENIX_PYTHON = PHOENIX_VENV / "bin" / "python"
STARTUP_S = 180  # a bound on waiting for the server, not an assertion about speed
PROJECT = "coach-interop"
USAGE = {"input_tokens": 1200, "output_tokens": 345, "cache_read_input_tokens": 5000,
         "cache_creation_input_tokens": 3000, "service_tier": "standard"}

if not PHOENIX_PYTHON.exists():
    pytest.skip(f"{PHOENIX_VENV} is missing: `make interop` installs Arize Phoenix to run "
                "this test", allow_module_level=True)


@pytest.fixture
def phoenix(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "PHOENIX_HOST": "127.0.0.1", "PHOENIX_PORT": str(port),
           "PHOENIX_GRPC_PORT": str(free_port()), "PHOENIX_WORKING_DIR": str(tmp_path),
           "PHOENIX_TELEMETRY_ENABLED": "false"}
    log = (tmp_path / "phoenix.log").open("w")
    process = subprocess.Popen([str(PHOENIX_PYTHON), "-m", "phoenix.server.main", "serve"],
                               cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            if process.poll() is not None:
                pytest.fail("Phoenix exited:\n" + (tmp_path / "phoenix.log").read_text())
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("Phoenix did not start:\n" + (tmp_path / "phoenix.log").read_text())
            time.sleep(1)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def spans_of(base: str, trace_id: str) -> list[dict[str, Any]]:
    """A trace's spans as Phoenix stored them (its export runs in the background, so wait
    until the whole trace, root included, has arrived)."""
    deadline = time.monotonic() + 60
    while True:
        r = httpx.get(f"{base}/v1/projects/{PROJECT}/spans", params={"limit": 1000},
                      timeout=10)
        if r.status_code == 200:
            found = [s for s in r.json()["data"] if s["context"]["trace_id"] == trace_id]
            if any(s["parent_id"] is None for s in found):
                return found
        if time.monotonic() > deadline:
            pytest.fail(f"trace {trace_id} never reached Phoenix: {r.status_code} {r.text[:300]}")
        time.sleep(1)


def flat(attributes: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Phoenix answers dotted attribute names as nested objects: flatten them back."""
    out: dict[str, Any] = {}
    for key, value in attributes.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flat(value, name + "."))
        else:
            out[name] = value
    return out


REAL_USAGE = ("gen_ai.usage.", "llm.token_count.")


def test_phoenix_shows_the_tree_tokens_cache_and_io_and_no_offline_usage(
        phoenix: str, tmp_path: Path, coach_home: str) -> None:
    env = coach_env(coach_home, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=f"{phoenix}/v1/traces",
                    OTEL_RESOURCE_ATTRIBUTES=f"openinference.project.name={PROJECT}",
                    OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="true")
    db = str(tmp_path / "c.db")
    with MessagesAPI() as api:
        api.queue(tool_reply("create_project", {"title": "Handover Helper"}, usage=USAGE),
                  text_reply("Started **Handover Helper**. Who has the problem?", usage=USAGE))
        claude_env = {**env, "ANTHROPIC_API_KEY": "test-key", "ANTHROPIC_BASE_URL": api.base_url}
        claude = run_coach("--db", db, "--model", "claude-sonnet-5-5", "chat", "--json",
                           stdin=lines_in(["Title: Handover Helper"]), env=claude_env)
    assert claude.returncode == 0, claude.stderr
    offline = run_coach("--db", db, "--model", "offline", "chat", "--json",
                        stdin=lines_in(["status"]), env=env)
    assert offline.returncode == 0, offline.stderr
    [claude_turn] = json_turns(claude.stdout)
    [offline_turn] = json_turns(offline.stdout)

    spans = spans_of(phoenix, claude_turn["trace_id"])
    by_id = {s["context"]["span_id"]: s for s in spans}
    [root] = [s for s in spans if s["parent_id"] is None]
    assert root["name"] == "invoke_agent coach" and root["span_kind"] == "AGENT"
    r = flat(root["attributes"])
    assert r["input.value"] == "Title: Handover Helper"
    assert r["output.value"] == claude_turn["reply"]
    kinds = {s["name"]: s["span_kind"] for s in spans}
    assert kinds["node coach"] == "CHAIN" and kinds["execute_tool create_project"] == "TOOL"
    chats = sorted((s for s in spans if s["name"] == "chat claude-sonnet-5-5"),
                   key=lambda s: s["start_time"])
    assert len(chats) == 2
    for chat in chats:
        assert chat["span_kind"] == "LLM"
        assert by_id[chat["parent_id"]]["name"] == "node coach"
        a = flat(chat["attributes"])
        assert a["llm.token_count.prompt"] == 1200 + 5000 + 3000
        assert a["llm.token_count.completion"] == 345
        assert a["llm.token_count.prompt_details.cache_read"] == 5000
        assert a["llm.token_count.prompt_details.cache_write"] == 3000
    # The last call's Output is its reply, not the response envelope ({"id": "msg_…"}).
    assert flat(chats[-1]["attributes"])["output.value"] == \
        "Started **Handover Helper**. Who has the problem?"

    estimated = spans_of(phoenix, offline_turn["trace_id"])
    offline_chats = [flat(s["attributes"]) for s in estimated if s["name"] == "chat offline"]
    assert offline_chats
    for a in offline_chats:
        assert not [k for k in a if k.startswith(REAL_USAGE)], a
        assert a["coach.usage.estimated.input_tokens"] > 0
