"""An API key never leaks through an error: a gateway on 127.0.0.1 answers 401 and quotes
the request's headers (the key among them) in its error message; then every sink is
searched for the key — the database file's bytes (ledger, transcript, checkpoints, span
store), spans exported over OTLP to a real receiver, the real `coach chat` process's
stdout and stderr (with and without --debug), and the web API's responses."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import anthropic
import pytest

from agent.claude import ClaudeModel
from evals.messages_api import MessagesAPI, error
from telemetry.genai import REDACTED, Redactor, redact
from telemetry.tracing import default_meter_provider, otlp_processor
from tests.learner import coach_env, json_turns, lines_in, run_coach
from tests.test_otlp import Collector
from tests.webserver import parse_sse, running

pytestmark = pytest.mark.slow
MODEL = "claude-sonnet-5-5"


def gateway_key() -> str:
    # Not shaped like an Anthropic key, so only knowing the key itself can redact it;
    # assembled at run time so nothing key-shaped is committed.
    return "gw-" + secrets.token_hex(20)


def anthropic_key() -> str:
    return "sk-ant-" + "api03-" + secrets.token_urlsafe(30)


@pytest.fixture
def collector() -> Iterator[Collector]:
    c = Collector()
    c.thread.start()
    yield c
    c.server.shutdown()
    c.server.server_close()
    c.thread.join()


@pytest.fixture
def echoing_gateway() -> Iterator[MessagesAPI]:
    with MessagesAPI(default=error(401, "authentication_error", "invalid x-api-key",
                                   echo_headers=True)) as api:
        yield api


def database_bytes(folder: Path) -> bytes:
    """Every SQLite file there (the database and its -wal/-shm), as raw bytes."""
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*.db*")) if p.is_file())


def exported(c: Collector) -> bytes:
    return b"".join(r.SerializeToString() for _, r in c.traces)


def assert_the_gateway_saw(api: MessagesAPI, key: str) -> None:
    # The test is only meaningful if the key really went out and came back quoted.
    sent = [r["headers"].get("x-api-key") or r["headers"].get("authorization", "").split()[-1]
            for r in api.requests]
    assert sent and set(sent) == {key}


@pytest.mark.parametrize("make_key", [gateway_key, anthropic_key])
@pytest.mark.parametrize("debug", [False, True])
def test_a_401_that_quotes_the_key_leaks_it_nowhere_from_coach_chat(
        echoing_gateway, collector, coach_home, tmp_path, make_key, debug):
    key = make_key()
    env = coach_env(coach_home, ANTHROPIC_API_KEY=key, ANTHROPIC_BASE_URL=echoing_gateway.base_url,
                    COACH_MODEL=MODEL, OTEL_EXPORTER_OTLP_ENDPOINT=collector.url,
                    OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="true",
                    **({"COACH_DEBUG": "1"} if debug else {}))
    db = tmp_path / "data" / "coach.db"
    done = run_coach("--db", f"sqlite:///{db}", "--user", "ada", "chat", "--json", env=env,
                     stdin=lines_in(["hello", "Title: Handover Helper"]))
    assert_the_gateway_saw(echoing_gateway, key)
    turns = json_turns(done.stdout)
    assert len(turns) == 2 and all("the API key was refused" in t["reply"] for t in turns)
    assert REDACTED in turns[0]["reply"]  # the quoted key was there, and was taken out
    sinks = {"stdout": done.stdout.encode(), "stderr": done.stderr.encode(),
             "database": database_bytes(db.parent), "otlp": exported(collector)}
    # (stderr is empty here: a failed turn is reported in its reply, and the exit code.)
    assert done.returncode == 1 and sinks["database"] and sinks["otlp"]
    assert b"authentication_error" in sinks["database"]  # the ledger kept the error itself
    leaks = [name for name, data in sinks.items() if key.encode() in data]
    assert leaks == []


def test_a_401_that_quotes_the_key_leaks_it_nowhere_from_the_web_api(
        echoing_gateway, collector, tmp_path, monkeypatch):
    key = gateway_key()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.url)
    otlp_processor.cache_clear()  # this process's exporter, built for this receiver
    bodies: list[bytes] = []
    try:
        with anthropic.Anthropic(api_key=key, base_url=echoing_gateway.base_url,
                                 max_retries=0) as client, \
                running(f"sqlite:///{tmp_path / 'web' / 'web.db'}", tmp_path / "home",
                        lambda: ClaudeModel(MODEL, client=client)) as srv:
            c = srv.client(srv.learner("cleo"))
            thread = c.post("/api/threads").json()["thread_id"]
            plain = c.post(f"/api/threads/{thread}/messages", json={"text": "hello"})
            with c.stream("POST", f"/api/threads/{thread}/messages", json={"text": "hi"},
                          headers={"Accept": "text/event-stream"}) as streamed:
                bodies.append("".join(streamed.iter_text()).encode())
            bodies += [plain.content, c.get(f"/api/threads/{thread}").content,
                       c.get("/api/traces").content, c.get("/api/costs?by=model").content]
            events = parse_sse(bodies[0].decode())
        otlp = otlp_processor()
        assert otlp is not None
        otlp.force_flush()
    finally:
        otlp_processor.cache_clear()
        # The meters this test's turns made are the process's: send and drop them here.
        meters = default_meter_provider()
        getattr(meters, "shutdown", lambda: None)()
        default_meter_provider.cache_clear()
    assert_the_gateway_saw(echoing_gateway, key)
    assert plain.status_code == 200 and "the API key was refused" in plain.json()["reply"]
    assert REDACTED in plain.json()["reply"]
    assert events and json.loads(events[-1][1]).get("error")
    sinks = {"responses": b"".join(bodies), "database": database_bytes(tmp_path / "web"),
             "otlp": exported(collector)}
    assert all(sinks.values()), [k for k, v in sinks.items() if not v]
    assert [name for name, data in sinks.items() if key.encode() in data] == []


def test_describe_error_redacts_the_clients_own_key_and_credential_fields(echoing_gateway):
    key = gateway_key()
    with anthropic.Anthropic(api_key=key, base_url=echoing_gateway.base_url,
                             max_retries=0) as client:
        model = ClaudeModel(MODEL, client=client)
        from seam.model import ModelError, ModelRequest

        with pytest.raises(ModelError) as caught:
            model.complete(ModelRequest(system="s", messages=[
                {"role": "user", "content": "hi"}], tools=[], max_tokens=10))
    text = str(caught.value)
    assert key not in text and "request headers" in text and REDACTED in text
    # `from None`: the SDK's exception (with the raw body) is not chained into tracebacks.
    assert caught.value.__suppress_context__ and caught.value.__cause__ is None


@pytest.mark.parametrize("text", [
    "{'X-Api-Key': 'abcdef123456'}", '"authorization": "Bearer abcdefghijklmnopqrstuv"',
    "api_key=abcdef123456", "auth_token: abcdef123456"])
def test_credential_fields_are_redacted_whatever_the_value_looks_like(text: str) -> None:
    out = redact(text)
    assert "abcdef123456" not in out and "abcdefghijklmnopqrstuv" not in out
    assert REDACTED in out


def test_known_secrets_are_redacted_and_ordinary_words_kept() -> None:
    r = Redactor([], extra=["gw-0123456789", None, "short"])
    assert r("key gw-0123456789 refused, short words stay") == \
        f"key {REDACTED} refused, short words stay"
