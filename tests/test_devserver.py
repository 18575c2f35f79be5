"""The real `langgraph dev` (langgraph-cli[inmem]) serving the coach.

langgraph-api cannot share the dev environment (it needs jsonschema-rs<0.45, schemathesis
>=0.60), so `make interop` (which `make test` runs first) installs it with the project into
.venv-interop from constraints-devserver.txt; this test starts that environment's server.

It is started on 127.0.0.1 from a copy of `langgraph.json` whose paths point into this
checkout, so the server's own `.langgraph_api/` lands in a temporary folder; no browser, no
reload, analytics and LangSmith tracing off, so it talks to nothing but loopback. Two turns
go through its HTTP API on one thread, with the context Studio would send; the published
schemas are read back; and the turn is checked in the coach's own store and ledger.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

from evals.serving import free_port
from memory.models import LedgerEntry, Project, User
from memory.store import open_engine, session_scope

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
INTEROP = Path(os.environ.get("COACH_INTEROP_VENV") or ROOT / ".venv-interop")
LANGGRAPH = INTEROP / "bin" / "langgraph"
STARTUP_S = 120  # a bound on waiting for the server, not an assertion about speed

if not LANGGRAPH.exists():
    if os.environ.get("CI"):  # `make test` builds it first: missing in CI is a broken run
        raise RuntimeError(f"{LANGGRAPH} is missing: run `make interop`")
    pytest.skip(f"{LANGGRAPH} is missing: `make interop` installs the LangGraph dev server "
                "to run this test", allow_module_level=True)


@pytest.fixture
def devserver(tmp_path: Path) -> Iterator[str]:
    spec = json.loads((ROOT / "langgraph.json").read_text())
    spec["dependencies"] = [str(ROOT)]
    spec["graphs"] = {name: str(ROOT / target.removeprefix("./"))
                      for name, target in spec["graphs"].items()}
    config = tmp_path / "langgraph.json"
    config.write_text(json.dumps(spec))
    port = free_port()
    env = {**os.environ, "COACH_HOME": str(tmp_path / "home"), "COACH_USER": "nobody",
           "LANGGRAPH_CLI_NO_ANALYTICS": "1", "LANGSMITH_TRACING": "false",
           "LANGCHAIN_TRACING_V2": "false", "OTEL_SDK_DISABLED": "false"}
    log = (tmp_path / "server.log").open("w")
    process = subprocess.Popen(
        [str(LANGGRAPH), "dev", "--config", str(config), "--host", "127.0.0.1", "--port",
         str(port), "--no-browser", "--no-reload"], cwd=tmp_path, env=env, stdout=log,
        stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            if process.poll() is not None:
                pytest.fail("langgraph dev exited:\n" + (tmp_path / "server.log").read_text())
            try:
                if httpx.get(f"{base}/ok", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("langgraph dev did not start:\n"
                            + (tmp_path / "server.log").read_text())
            time.sleep(0.5)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        shutil.rmtree(tmp_path / ".langgraph_api", ignore_errors=True)


def reply(state: dict[str, object]) -> str:
    messages = state["messages"]
    assert isinstance(messages, list)
    return " ".join(b["text"] for b in messages[-1]["content"] if b.get("type") == "text")


def test_two_turns_on_one_thread_through_the_real_dev_server(devserver: str,
                                                             tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'studio.db'}"
    context = {"user": "studio-ann", "model": "offline", "database_url": db}
    with httpx.Client(base_url=devserver, timeout=60) as client:
        [assistant] = client.post("/assistants/search", json={"graph_id": "coach"}).json()
        schemas = client.get(f"/assistants/{assistant['assistant_id']}/schemas")
        assert schemas.status_code == 200, schemas.text
        published = schemas.json()
        # Studio's form: the learner's message in, settings (JSON only) as the context.
        assert published["input_schema"]["required"] == ["incoming"]
        assert set(published["context_schema"]["properties"]) == {"user", "model",
                                                                  "database_url"}
        assert "messages" in published["output_schema"]["properties"]

        thread = client.post("/threads", json={}).json()["thread_id"]
        first = client.post(f"/threads/{thread}/runs/wait", json={
            "assistant_id": "coach", "input": {"incoming": "Title: Handover Helper"},
            "context": context})
        assert first.status_code == 200 and "__error__" not in first.json(), first.text
        assert "Started project #1" in reply(first.json())
        second = client.post(f"/threads/{thread}/runs/wait", json={
            "assistant_id": "coach", "input": {"incoming": "status"}, "context": context})
        assert second.status_code == 200 and "__error__" not in second.json(), second.text
        # The second turn saw the first: the same project, and the window holds both turns.
        assert second.json()["project_id"] == 1
        learner = [m for m in second.json()["messages"] if m["role"] == "user"
                   and any(b.get("type") == "text" for b in m["content"])]
        assert [m["content"][0]["text"] for m in learner] == ["Title: Handover Helper",
                                                              "status"]

    # The turns reached the coach's own store and ledger, for the learner the context named.
    engine = open_engine(db)
    try:
        with session_scope(engine) as s:
            [user] = s.exec(select(User)).all()
            [project] = s.exec(select(Project)).all()
            rows = s.exec(select(LedgerEntry)).all()
        assert user.name == "studio-ann" and project.user_id == user.id
        assert project.title == "Handover Helper"
        assert len(rows) >= 3 and {r.user_id for r in rows} == {user.id}
        assert {r.purpose for r in rows} == {"coach"}
        assert all(r.trace_id for r in rows)  # traced: every call inside its chat span
    finally:
        engine.dispose()
