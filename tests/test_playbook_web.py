"""`/api/playbook` against a real uvicorn on 127.0.0.1: signed-in only, the step's entries,
a search, one entry, and Markdown rendered without raw HTML."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from agent.web.playbook import MARKDOWN
from tests.webserver import Server, running


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("web-playbook")
    with running(f"sqlite:///{tmp / 'web.db'}", tmp / "home") as srv:
        yield srv


@pytest.fixture
def me(server: Server) -> Iterator[httpx.Client]:
    with server.client(server.learner(f"l-{uuid.uuid4().hex[:8]}")) as c:
        yield c


def test_the_playbook_needs_a_signed_in_learner(server: Server) -> None:
    for path in ("/api/playbook", "/api/playbook/four-pillars"):
        assert httpx.get(server.url + path).status_code == 401
        bad = httpx.get(server.url + path, headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 401


def test_a_steps_entries_and_a_search(me: httpx.Client) -> None:
    r = me.get("/api/playbook", params={"step": "deploy", "limit": 100})
    assert r.status_code == 200
    data = r.json()
    assert data["step"] == "deploy" and len(data["entries"]) >= 5
    assert all("deploy" in e["steps"] for e in data["entries"])
    assert {e["id"] for e in data["entries"]} >= {"deploy-streamlit-demo", "deploy-secrets"}
    found = me.get("/api/playbook", params={"q": "which tracing tool would you recommend?",
                                            "step": "harden"}).json()
    assert found["entries"][0]["id"] == "tracing-tools"
    assert found["entries"][0]["html"].startswith("<p>Langfuse is open source")
    one = me.get("/api/playbook/deploy-secrets").json()
    assert "<code>.env.example</code>" in one["html"]
    assert me.get("/api/playbook/no-such-entry").status_code == 404


def test_bad_parameters_are_422(me: httpx.Client) -> None:
    assert me.get("/api/playbook", params={"step": "ship"}).status_code == 422
    assert me.get("/api/playbook", params={"limit": 0}).status_code == 422
    assert me.get("/api/playbook", params={"q": "x" * 501}).status_code == 422


def test_markdown_is_rendered_with_raw_html_disabled() -> None:
    html = MARKDOWN.render("Hi <script>alert(1)</script> [x](javascript:alert(1)) "
                           "<img src=x onerror=alert(1)>")
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;" in html
    assert 'href="javascript:' not in html
