"""The HTTP API against a real uvicorn on 127.0.0.1: every route's shape (SPEC: HTTP API),
the SSE stream, auth (401), size limits (413), bad input (422), busy threads (409), CSRF on
cookie writes, and learner isolation on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, update
from sqlmodel import select

from agent.web.rendering import markdown_html
from memory.accounts import create_link
from memory.models import LedgerEntry, PostmortemVersion, Thread, User, utcnow
from memory.store import session_scope
from tests.learner import assert_turn_shape
from tests.webserver import STEP_ONE, Server, parse_sse, running

ROW_KEYS = {"key", "calls", "input_tokens", "output_tokens", "cache_read_input_tokens",
            "cache_creation_input_tokens", "cost_usd"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("web")
    with running(f"sqlite:///{tmp / 'web.db'}", tmp / "home") as srv:
        yield srv


def learner(server: Server) -> httpx.Client:
    return server.client(server.learner(f"l-{uuid.uuid4().hex[:8]}"))


def new_thread(c: httpx.Client) -> str:
    r = c.post("/api/threads")
    assert r.status_code == 200, r.text
    assert set(r.json()) == {"thread_id"}
    return str(r.json()["thread_id"])


def say(c: httpx.Client, thread_id: str, text: str) -> dict[str, Any]:
    r = c.post(f"/api/threads/{thread_id}/messages", json={"text": text})
    assert r.status_code == 200, r.text
    turn: dict[str, Any] = r.json()
    assert_turn_shape(turn)
    return turn


def test_healthz_needs_no_sign_in(server: Server) -> None:
    r = httpx.get(server.url + "/healthz")
    assert r.status_code == 200 and r.json()["status"] == "ok"


ROUTES = [("GET", "/api/threads"), ("POST", "/api/threads"), ("GET", "/api/threads/abc"),
          ("POST", "/api/threads/abc/messages"), ("GET", "/api/projects"),
          ("GET", "/api/projects/1"), ("POST", "/api/projects/1/postmortem"),
          ("GET", "/api/costs"), ("GET", "/api/costs/daily"), ("GET", "/api/budget"),
          ("GET", "/api/traces"), ("GET", "/api/traces/" + "0" * 32)]


@pytest.mark.parametrize(("method", "path"), ROUTES)
@pytest.mark.parametrize("auth", [None, "Bearer pc_not-a-token", "Basic YTpi", "Bearer"])
def test_no_or_bad_token_is_401(server: Server, method: str, path: str,
                                auth: str | None) -> None:
    headers = {"Authorization": auth} if auth else {}
    r = httpx.request(method, server.url + path, headers=headers, json={"text": "hi"})
    assert r.status_code == 401, r.text
    assert r.headers["www-authenticate"] == "Bearer"
    assert isinstance(r.json()["detail"], str)


@pytest.mark.parametrize("body", [b'{"text":', b'{"text": 5}', b"not json", b'{"x": 1}',
                                  b'{"text": "caf\xe9"}'])  # not UTF-8: undecodable
@pytest.mark.parametrize("auth", [None, "Bearer pc_not-a-token"])
def test_a_bad_body_without_valid_credentials_is_still_401(server: Server, body: bytes,
                                                           auth: str | None) -> None:
    headers = {"content-type": "application/json", **({"Authorization": auth} if auth else {})}
    r = httpx.post(server.url + "/api/threads/abc/messages", content=body, headers=headers)
    assert r.status_code == 401, r.text


def test_threads_turns_and_transcript(server: Server) -> None:
    c = learner(server)
    thread_id = new_thread(c)
    first = say(c, thread_id, STEP_ONE)
    assert (first["thread_id"], first["turn"], first["model"]) == (thread_id, 1, "offline")
    assert first["project_id"] and first["step"] in ("problem", "build")
    assert any(call["name"] == "create_project" for call in first["tool_calls"])
    second = say(c, thread_id, "status")
    assert second["turn"] == 2
    listed = c.get("/api/threads").json()["threads"]
    assert [t["thread_id"] for t in listed] == [thread_id]
    assert listed[0]["turns"] == 2 and listed[0]["project_title"] == "Handover Helper"
    t = c.get(f"/api/threads/{thread_id}").json()
    assert (t["thread_id"], t["turns"], t["project_id"]) == (thread_id, 2, first["project_id"])
    users = [e for e in t["transcript"] if e["role"] == "user" and e["seq"] == 0]
    assert [e["content"][0]["text"] for e in users] == [STEP_ONE, "status"]
    assert any(b.get("text") == second["reply"] for e in t["transcript"]
               for b in e["content"] if e["role"] == "assistant")


def test_a_new_web_thread_continues_the_active_project(server: Server) -> None:
    c = learner(server)
    first = new_thread(c)
    started = say(c, first, STEP_ONE)
    assert started["project_id"] is not None and started["step"] == "build"
    second = new_thread(c)
    r = c.get(f"/api/threads/{second}")
    assert r.json()["project_id"] == started["project_id"]
    status = say(c, second, "status")
    assert status["project_id"] == started["project_id"] and status["step"] == "build"
    assert "no active project" not in status["reply"].lower()
    assert "Handover" in status["reply"] or "#" + str(started["project_id"]) in status["reply"]


def test_reply_streams_as_server_sent_events(server: Server) -> None:
    c = learner(server)
    thread_id = new_thread(c)
    with c.stream("POST", f"/api/threads/{thread_id}/messages", json={"text": STEP_ONE},
                  headers={"Accept": "text/event-stream"}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        body = "".join(r.iter_text())
    events = parse_sse(body)
    # Text as it is written, the reply rendered from Markdown, then the turn itself.
    assert [e for e, _ in events[:-2]] == ["text"] * (len(events) - 2) and len(events) >= 3
    assert events[-2][0] == "html"
    html = json.loads(events[-2][1])["html"]
    kind, data = events[-1]
    assert kind == "turn"
    turn = json.loads(data)
    assert_turn_shape(turn)
    assert "".join(json.loads(d)["text"] for _, d in events[:-2]) == turn["reply"]
    assert html == markdown_html(turn["reply"]) and html.startswith("<p>")
    # The streamed turn is stored like any other.
    assert c.get(f"/api/threads/{thread_id}").json()["turns"] == 1


def test_projects_evidence_and_postmortem_versions(server: Server) -> None:
    c = learner(server)
    turn = say(c, new_thread(c), STEP_ONE)
    project_id = turn["project_id"]
    portfolio = c.get("/api/projects").json()
    assert {"projects", "done", "readiness"} <= set(portfolio)
    [item] = portfolio["projects"]
    assert {"id", "title", "step", "difficulty"} <= set(item)
    assert (item["id"], item["title"], item["difficulty"]) == (project_id, "Handover Helper", 2)
    for expected in (1, 2):
        r = c.post(f"/api/projects/{project_id}/postmortem")
        assert r.status_code == 200, r.text
        draft = r.json()
        assert (draft["project_id"], draft["version"]) == (project_id, expected)
        assert draft["words"] > 0 and "grounding" in draft and draft["text"].startswith("#")
        # Every sentence of the draft with the records it rests on (or framing / a question).
        problem = [s for s in draft["sentences"] if "problem statement" in s["text"]]
        assert problem and problem[0]["sources"] == [f"project:{project_id}:problem"]
        assert all(s["sources"] for s in draft["sentences"] if s["kind"] in ("fact", "quote"))
    view = c.get(f"/api/projects/{project_id}").json()
    assert view["postmortem_versions"][-1]["sentences"] == draft["sentences"]
    assert {"evidence", "gate", "guide", "postmortem_versions", "lessons"} <= set(view)
    assert [v["version"] for v in view["postmortem_versions"]] == [1, 2]
    assert all(v["source"] == "draft" and v["text"] for v in view["postmortem_versions"])
    assert view["guide"]["number"] in (1, 2)


def test_costs_budget_and_traces(server: Server) -> None:
    c = learner(server)
    thread_id = new_thread(c)
    turns = [say(c, thread_id, m) for m in (STEP_ONE, "status")]
    with session_scope(server.engine) as s:
        calls = s.exec(select(func.count()).select_from(LedgerEntry)
                       .where(LedgerEntry.thread_id == thread_id)).one()
    assert calls >= 2
    for by in ("model", "day", "thread", "project", "purpose"):
        report = c.get("/api/costs", params={"by": by}).json()
        assert {"total_usd", "rows"} <= set(report)
        assert report["calls"] == calls and report["total_usd"] == 0.0
        assert all(ROW_KEYS <= set(row) for row in report["rows"])
    assert [r["key"] for r in c.get("/api/costs?by=thread").json()["rows"]] == [thread_id]
    assert c.get("/api/costs?by=user").status_code == 422  # scoped to the caller anyway
    assert c.get("/api/costs?since=2999-01-01").json()["rows"] == []
    daily = c.get("/api/costs/daily?split=purpose&days=3").json()
    assert len(daily["days"]) == 3 and daily["series"][0]["key"] == "coach"
    assert sum(daily["series"][0]["calls"]) == calls
    budget = c.get("/api/budget").json()
    assert budget["limit_usd"] == 5.0 and budget["spent_today_usd"] == 0.0
    assert budget["left_usd"] == 5.0
    traces = c.get("/api/traces").json()["traces"]
    assert [t["trace_id"] for t in traces] == [t["trace_id"] for t in reversed(turns)]
    assert c.get("/api/traces?errors=true").json()["traces"] == []
    assert c.get("/api/traces?slow_ms=999999999").json()["traces"] == []
    assert len(c.get("/api/traces?min_cost_usd=0&limit=1").json()["traces"]) == 1
    one = c.get(f"/api/traces/{turns[0]['trace_id'].upper()}").json()
    assert one["trace_id"] == turns[0]["trace_id"] and one["model_calls"] >= 1
    names = [s["name"] for s in one["spans"]]
    assert names[0] == "invoke_agent coach" and any(n.startswith("chat ") for n in names)
    assert all({"span_id", "parent_id", "duration_ms", "attributes"} <= set(s)
               for s in one["spans"])


def test_unknown_ids_are_404(server: Server) -> None:
    c = learner(server)
    for path in ("/api/threads/nope", "/api/projects/999999",
                 "/api/traces/" + "f" * 32):
        assert c.get(path).status_code == 404, path
    assert c.post("/api/threads/nope/messages", json={"text": "hi"}).status_code == 404
    assert c.post("/api/projects/999999/postmortem").status_code == 404


def test_a_32_kb_message_of_non_ascii_text_fits_when_json_escapes_it(server: Server) -> None:
    c = learner(server)
    thread_id = new_thread(c)
    text = "é" * 16_000  # 32,000 bytes of UTF-8; six bytes a character once JSON-escaped
    r = c.post(f"/api/threads/{thread_id}/messages", content=json.dumps({"text": text}),
               headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    assert r.json()["turn"] == 1


def test_bodies_over_the_limit_are_413(server: Server) -> None:
    c = learner(server)
    thread_id = new_thread(c)
    big = json.dumps({"text": "x" * 210_000}).encode()
    r = c.post(f"/api/threads/{thread_id}/messages", content=big,
               headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and "too large" in r.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit counts streamed bytes
        yield b'{"text": "'
        for _ in range(30):
            yield b"y" * 8192
        yield b'"}'

    r = c.post(f"/api/threads/{thread_id}/messages", content=chunks(),
               headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert c.get(f"/api/threads/{thread_id}").json()["turns"] == 0


@pytest.mark.parametrize(("body", "says"), [
    (b"{not json", "json"), (b"[]", "body"), (b"{}", "text"), (b'{"text": 3}', "text"),
    (b'{"text": "hi", "extra": 1}', "extra"), (b'{"text": "   "}', "empty message"),
    (json.dumps({"text": "\u00e9" * 20_000}, ensure_ascii=False).encode(), "message too long"),
    (b'{"text": "a\\u0000b"}', "control characters"),
])
def test_malformed_input_is_422_with_a_clear_message(server: Server, body: bytes,
                                                     says: str) -> None:
    c = learner(server)
    r = c.post(f"/api/threads/{new_thread(c)}/messages", content=body,
               headers={"Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert says in r.json()["detail"].lower()


@pytest.mark.parametrize("path", ["/api/projects/abc", "/api/projects/0",
                                  "/api/projects/99999999999999999999", "/api/traces/xyz",
                                  "/api/costs?by=bogus", "/api/costs?since=yesterday",
                                  "/api/traces?limit=0", "/api/traces?slow_ms=nan",
                                  "/api/costs/daily?days=100000"])
def test_bad_parameters_are_422(server: Server, path: str) -> None:
    r = learner(server).get(path)
    assert r.status_code == 422 and r.json()["detail"].startswith("invalid request")


@pytest.mark.parametrize("accept", ["application/json", "text/event-stream"])
def test_a_busy_thread_is_409(server: Server, accept: str) -> None:
    c = learner(server)
    thread_id = new_thread(c)
    with session_scope(server.engine) as s:  # another worker's turn holds the lease
        s.execute(update(Thread).where(Thread.id == thread_id)  # type: ignore[arg-type]
                  .values(lease_owner="elsewhere", lease_until=utcnow() + timedelta(minutes=1)))
    r = c.post(f"/api/threads/{thread_id}/messages", json={"text": "status"},
               headers={"Accept": accept})
    assert r.status_code == 409 and "busy" in r.json()["detail"]


def sign_in(server: Server, token: str) -> httpx.Client:
    browser = server.client()
    r = browser.post("/signin", content=f"token={token}&next=/portfolio",
                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 303 and r.headers["location"] == "/portfolio"
    cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith("coach_session="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    return browser


def test_browser_session_cookie_and_csrf(server: Server) -> None:
    token = server.learner(f"b-{uuid.uuid4().hex[:8]}")
    anonymous = server.client()
    r = anonymous.get("/portfolio")
    assert r.status_code == 303 and r.headers["location"] == "/signin?next=/portfolio"
    assert "Sign in" in anonymous.get("/signin").text
    bad = anonymous.post("/signin", content="token=wrong",
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert bad.status_code == 401 and "not valid" in bad.text
    browser = sign_in(server, token)
    page = browser.get("/portfolio")
    assert page.status_code == 200 and "portfolio.js" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert browser.get("/api/threads").status_code == 200
    refused = browser.post("/api/threads")
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    csrf = {"X-CSRF-Token": browser.cookies["coach_csrf"]}
    assert browser.post("/api/threads", headers={"X-CSRF-Token": "guess"}).status_code == 403
    evil = browser.post("/api/threads", headers={**csrf, "Origin": "http://evil.example"})
    assert evil.status_code == 403
    assert browser.post("/api/threads", headers={**csrf, "Origin": server.url}).status_code == 200
    assert browser.post("/signout", headers=csrf).status_code == 303
    assert browser.get("/api/threads").status_code == 401


def test_one_time_sign_in_link(server: Server) -> None:
    server.learner(name := f"k-{uuid.uuid4().hex[:8]}")
    with session_scope(server.engine) as s:
        user_id = s.exec(select(User.id).where(User.name == name)).one()
    code = create_link(server.engine, user_id)
    browser = server.client()
    r = browser.get(f"/signin?code={code}")
    assert r.status_code == 303 and browser.get("/").status_code == 200
    again = server.client().get(f"/signin?code={code}")
    assert again.status_code == 401 and "used or expired" in again.text


def test_docs_and_pages_load_nothing_from_other_hosts(server: Server) -> None:
    docs = httpx.get(server.url + "/docs")
    assert docs.status_code == 200 and "/docs-static/swagger-ui-bundle.js" in docs.text
    assert "cdn" not in docs.text.lower()
    assert httpx.get(server.url + "/docs-static/swagger-ui-bundle.js").status_code == 200
    paths = httpx.get(server.url + "/openapi.json").json()["paths"]
    for path in ("/healthz", "/api/threads", "/api/threads/{thread_id}",
                 "/api/threads/{thread_id}/messages", "/api/projects",
                 "/api/projects/{project_id}", "/api/projects/{project_id}/postmortem",
                 "/api/costs", "/api/traces", "/api/traces/{trace_id}", "/api/budget"):
        assert path in paths, path
    for asset in ("common.js", "chat.js", "portfolio.js", "costs.js", "traces.js", "app.css"):
        text = httpx.get(f"{server.url}/static/{asset}").text
        text = text.replace("http://www.w3.org/2000/svg", "")  # a namespace, not a fetch
        assert "http://" not in text and "https://" not in text, asset


# -- isolation: learner A with learner B's ids, on SQLite and PostgreSQL --------------------

@pytest.fixture
def isolated(store_url: str, tmp_path: Any) -> Iterator[Server]:
    with running(store_url, tmp_path / "home") as srv:
        yield srv


def seed(c: httpx.Client) -> dict[str, Any]:
    thread_id = new_thread(c)
    turn = say(c, thread_id, STEP_ONE)
    c.post(f"/api/projects/{turn['project_id']}/postmortem").raise_for_status()
    return {"thread": thread_id, "project": turn["project_id"], "trace": turn["trace_id"]}


def test_isolation_matrix(isolated: Server) -> None:
    a, b = isolated.client(isolated.learner("ada")), isolated.client(isolated.learner("bob"))
    mine, theirs = seed(a), seed(b)
    for method, path in [("GET", "/api/threads/{thread}"),
                         ("POST", "/api/threads/{thread}/messages"),
                         ("GET", "/api/projects/{project}"),
                         ("POST", "/api/projects/{project}/postmortem"),
                         ("GET", "/api/traces/{trace}")]:
        r = a.request(method, path.format(**theirs), json={"text": "status"})
        assert r.status_code == 404, (method, path, r.text)
        assert "bob" not in r.text
        assert a.request(method, path.format(**mine), json={"text": "status"}).status_code == 200
    lists = {
        "threads": [t["thread_id"] for t in a.get("/api/threads").json()["threads"]],
        "projects": [p["id"] for p in a.get("/api/projects").json()["projects"]],
        "traces": [t["trace_id"] for t in a.get("/api/traces?limit=200").json()["traces"]],
        "thread costs": [r["key"] for r in a.get("/api/costs?by=thread").json()["rows"]],
        "project costs": [r["key"] for r in a.get("/api/costs?by=project").json()["rows"]],
    }
    assert lists["threads"] == [mine["thread"]] and lists["projects"] == [mine["project"]]
    assert theirs["trace"] not in lists["traces"] and mine["trace"] in lists["traces"]
    assert lists["thread costs"] == [mine["thread"]]
    assert str(theirs["project"]) not in lists["project costs"]
    with session_scope(isolated.engine) as s:
        ada = s.exec(select(User.id).where(User.name == "ada")).one()
        own_calls = s.exec(select(func.count()).select_from(LedgerEntry)
                           .where(LedgerEntry.user_id == ada)).one()
        bob_versions = s.exec(select(func.count()).select_from(PostmortemVersion)
                              .where(PostmortemVersion.project_id == theirs["project"])).one()
        bob_turns = s.get(Thread, theirs["thread"]).turns  # type: ignore[union-attr]
    assert a.get("/api/costs").json()["calls"] == own_calls
    assert sum(sum(s["calls"]) for s in a.get("/api/costs/daily").json()["series"]) == own_calls
    assert (bob_versions, bob_turns) == (1, 1)  # A's attempts changed nothing of B's


def test_isolation_matrix_for_ingest_tokens(isolated: Server) -> None:
    """An ingest token writes spans to its own project only, opens nothing of the API, and
    a learner's API token is not an ingest token; on SQLite and PostgreSQL."""
    from memory.models import Evidence, ReceivedSpan
    from telemetry.ingest import issue_token
    from tests.test_ingest import app_spans, encode_spans

    ada_token, bob_token = isolated.learner("ada"), isolated.learner("bob")
    a, b = isolated.client(ada_token), isolated.client(bob_token)
    mine, theirs = seed(a), seed(b)
    ada_ingest = issue_token(isolated.engine, mine["project"])
    body = encode_spans(app_spans(1)).SerializeToString()
    protobuf = {"Content-Type": "application/x-protobuf"}
    for token, status in [(ada_ingest, 200), (ada_token, 401), (bob_token, 401)]:
        r = httpx.post(f"{isolated.url}/v1/traces", content=body,
                       headers={**protobuf, "Authorization": f"Bearer {token}"})
        assert r.status_code == status, (token[:4], r.text)
    ingest_only = isolated.client(ada_ingest)
    for path in ("/api/projects", f"/api/projects/{mine['project']}", "/api/threads"):
        assert ingest_only.get(path).status_code == 401
    with session_scope(isolated.engine) as s:
        owners = set(s.exec(select(ReceivedSpan.project_id)).all())
        bob_evidence = s.exec(select(func.count()).select_from(Evidence)
                              .where(Evidence.project_id == theirs["project"])).one()
    assert owners == {mine["project"]}
    assert bob_evidence == 0
    assert a.get(f"/api/projects/{mine['project']}").json()["evidence"]["observability"][
        "verified"] is True


def test_a_claude_reply_streams_in_pieces(tmp_path: Any) -> None:
    """With Claude, the text events carry the reply as the SDK streams it (the local
    Messages-API server sends it 12 characters at a time), not only at the end."""
    import anthropic

    from agent.claude import ClaudeModel
    from evals.messages_api import MessagesAPI, text_reply

    reply = "Tell me about the problem: who has it, and what goes wrong for them today?"
    with MessagesAPI() as api, anthropic.Anthropic(api_key="test-key", base_url=api.base_url,
                                                   max_retries=0) as client, \
            running(f"sqlite:///{tmp_path / 'claude.db'}", tmp_path / "home",
                    lambda: ClaudeModel("claude-sonnet-5-5", client=client)) as srv:
        c = srv.client(srv.learner("cleo"))
        api.queue(text_reply(reply))
        with c.stream("POST", f"/api/threads/{new_thread(c)}/messages",
                      json={"text": "hello"}, headers={"Accept": "text/event-stream"}) as r:
            events = parse_sse("".join(r.iter_text()))
    pieces = [json.loads(d)["text"] for e, d in events if e == "text"]
    assert len(pieces) > 3 and "".join(pieces) == reply
    turn = json.loads(events[-1][1])
    assert events[-1][0] == "turn" and turn["reply"] == reply
    assert turn["model"] == "claude-sonnet-5-5" and turn["cost_usd"] > 0


@pytest.mark.parametrize("target", ["//evil.example", "/\t/evil.example", "https://evil.example",
                                    "/\\evil.example", "javascript:alert(1)"])
def test_sign_in_never_redirects_off_site(server: Server, target: str) -> None:
    token = server.learner(f"r-{uuid.uuid4().hex[:8]}")
    r = server.client().post("/signin", data={"token": token, "next": target})
    assert r.status_code == 303 and r.headers["location"] == "/"
