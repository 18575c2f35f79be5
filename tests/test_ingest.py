"""`POST /v1/traces`: the OpenTelemetry SDK's own OTLP exporter sending to a real `coach
serve` on 127.0.0.1; received spans verify step 4 and measure cost per request."""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import Engine
from sqlmodel import select

from memory.models import Evidence, Project, ReceivedSpan
from memory.store import open_engine, session_scope
from memory.users import ensure_user
from telemetry.ingest import issue_token, prune_received, store
from tests.learner import coach_env, one_error_line, run_coach
from tests.test_tools import FULL_PROBLEM, call, put_at_step
from tests.webserver import Server, running
from tools import ToolContext
from tools.projects import project_view


@pytest.fixture
def server(sqlite_url: str, tmp_path: Path) -> Iterator[Server]:
    with running(sqlite_url, tmp_path / "home", rate_limits="ingest=1000/minute") as srv:
        yield srv


def new_project(engine: Engine, learner: str, step: str = "harden") -> int:
    ctx = ToolContext(engine, ensure_user(engine, learner), "t")
    pid = int(call(ctx, "create_project", FULL_PROBLEM).content["project_id"])
    put_at_step(engine, pid, step)
    return pid


def app_spans(n_requests: int = 3, model: str = "claude-haiku-5-5",
              scope: str = "opentelemetry.instrumentation.anthropic",
              usage: tuple[int, int] = (1000, 200)) -> list[ReadableSpan]:
    """What a learner's app instrumented with GenAI conventions would export."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource({"service.name": "handover-app"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer(scope)
    for _ in range(n_requests):
        with tracer.start_as_current_span("POST /summarise"), \
                tracer.start_as_current_span(f"chat {model}") as chat:
            chat.set_attributes({"gen_ai.operation.name": "chat",
                                 "gen_ai.provider.name": "anthropic"
                                 if model.startswith("claude") else "openai",
                                 "gen_ai.request.model": model,
                                 "gen_ai.usage.input_tokens": usage[0],
                                 "gen_ai.usage.output_tokens": usage[1],
                                 "gen_ai.input.messages": "a prompt that must not be kept"})
    provider.shutdown()
    return list(memory.get_finished_spans())


def export(srv: Server, token: str, spans: list[ReadableSpan],
           compression: Compression = Compression.NoCompression) -> SpanExportResult:
    exporter = OTLPSpanExporter(endpoint=f"{srv.url}/v1/traces", compression=compression,
                                headers={"Authorization": f"Bearer {token}"}, timeout=10)
    try:
        return exporter.export(spans)
    finally:
        exporter.shutdown()


def view(engine: Engine, pid: int) -> dict[str, Any]:
    with session_scope(engine) as s:
        project = s.get(Project, pid)
        assert project is not None
        return project_view(s, project)


def stored(engine: Engine, pid: int | None = None) -> list[ReceivedSpan]:
    with session_scope(engine) as s:
        query = select(ReceivedSpan)
        if pid is not None:
            query = query.where(ReceivedSpan.project_id == pid)
        return list(s.exec(query).all())


def otlp_json(spans: list[ReadableSpan]) -> dict[str, Any]:
    """OTLP/JSON as the spec writes it (hex ids), from the SDK's own protobuf encoder."""
    data = json_format.MessageToDict(encode_spans(spans))

    def hexify(node: Any) -> None:
        if isinstance(node, dict):
            for key in ("traceId", "spanId", "parentSpanId"):
                if isinstance(node.get(key), str):
                    node[key] = base64.b64decode(node[key]).hex()
            for value in node.values():
                hexify(value)
        elif isinstance(node, list):
            for item in node:
                hexify(item)

    hexify(data)
    return data


# -- the SDK's exporter into a real server ------------------------------------------------

@pytest.mark.parametrize("compression", [Compression.NoCompression, Compression.Gzip])
def test_the_sdk_exporter_verifies_observability_and_cost(
        server: Server, compression: Compression) -> None:
    pid = new_project(server.engine, "ada")
    token = issue_token(server.engine, pid)
    assert export(server, token, app_spans(3), compression) is SpanExportResult.SUCCESS

    rows = stored(server.engine, pid)
    assert len(rows) == 6 and {r.service for r in rows} == {"handover-app"}
    assert all("gen_ai.input.messages" not in r.attributes for r in rows)  # no content kept
    evidence = view(server.engine, pid)["evidence"]
    obs = evidence["observability"]
    assert obs["verified"] is True and obs["source"] == "traces"
    assert (obs["spans"], obs["traces"], obs["services"]) == (6, 3, ["handover-app"])
    assert obs["tools"] == ["opentelemetry"]
    assert obs["scopes"] == ["opentelemetry.instrumentation.anthropic"]
    cost = evidence["cost_tracking"]
    assert cost["verified"] is True and cost["per"] == "request" and cost["requests"] == 3
    # claude-haiku-5-5 from the coach's own table: $0.10/MTok in, $0.50/MTok out.
    assert Decimal(cost["per_request_mean_usd"]) == Decimal("0.0002")
    assert Decimal(cost["per_request_p95_usd"]) == Decimal("0.0002")
    assert cost["cost_usd"] == cost["per_request_mean_usd"]
    assert cost["models"] == ["claude-haiku-5-5"]


def test_json_encoding_and_partial_success(server: Server) -> None:
    pid = new_project(server.engine, "ada")
    token = issue_token(server.engine, pid)
    body = otlp_json(app_spans(1))
    bad = dict(body["resourceSpans"][0]["scopeSpans"][0]["spans"][0], spanId="abcd")
    body["resourceSpans"][0]["scopeSpans"][0]["spans"].append(bad)
    client = server.client(token)
    answer = client.post("/v1/traces", json=body)
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    assert answer.json() == {"partialSuccess": {
        "rejectedSpans": "1", "errorMessage": "1 spans without a valid trace_id/span_id"}}
    assert len(stored(server.engine, pid)) == 2

    gz = client.post("/v1/traces", content=gzip.compress(json.dumps(otlp_json(app_spans(1)))
                                                         .encode()),
                     headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert gz.status_code == 200 and gz.json() == {}
    assert len(stored(server.engine, pid)) == 4


def test_a_protobuf_answer_is_an_export_response(server: Server) -> None:
    pid = new_project(server.engine, "ada")
    answer = server.client(issue_token(server.engine, pid)).post(
        "/v1/traces", content=encode_spans(app_spans(1)).SerializeToString(),
        headers={"Content-Type": "application/x-protobuf"})
    assert answer.status_code == 200
    parsed = ExportTraceServiceResponse()
    parsed.ParseFromString(answer.content)
    assert parsed.partial_success.rejected_spans == 0


@pytest.mark.parametrize(("body", "headers", "status", "detail"), [
    (b"\x0a\xff\xff\xff", {"Content-Type": "application/x-protobuf"}, 400, "not an OTLP"),
    (b"{not json", {"Content-Type": "application/json"}, 400, "not JSON"),
    (b"[1, 2]", {"Content-Type": "application/json"}, 400, "an OTLP JSON body is an object"),
    (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}',
     {"Content-Type": "application/json"}, 400, "is not hex"),
    (b'{"resourceSpans": 7}', {"Content-Type": "application/json"}, 400, "not an OTLP trace"),
    (b"garbage", {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"}, 400,
     "not valid gzip"),
    (gzip.compress(b"\0" * (17 * 1024 * 1024)),
     {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"}, 413,
     "inflates past"),
    (b"x" * (4 * 1024 * 1024 + 1), {"Content-Type": "application/x-protobuf"}, 413,
     "too large"),
    (b"hello", {"Content-Type": "text/plain"}, 415, "unsupported Content-Type"),
])
def test_bad_bodies_are_refused_and_store_nothing(server: Server, body: bytes,
                                                  headers: dict[str, str], status: int,
                                                  detail: str) -> None:
    pid = new_project(server.engine, "ada")
    client = server.client(issue_token(server.engine, pid))
    answer = client.post("/v1/traces", content=body, headers=headers)
    assert answer.status_code == status
    assert detail in answer.json()["detail"]
    assert stored(server.engine) == []
    # Nothing lost: the next good export still lands.
    assert export(server, issue_token(server.engine, pid), app_spans(1)) \
        is SpanExportResult.SUCCESS


# -- tokens and isolation -----------------------------------------------------------------

def test_tokens_isolate_projects_and_a_new_token_replaces_the_old(server: Server) -> None:
    ada, bob = new_project(server.engine, "ada"), new_project(server.engine, "bob")
    ada_token, bob_token = issue_token(server.engine, ada), issue_token(server.engine, bob)
    assert export(server, ada_token, app_spans(1)) is SpanExportResult.SUCCESS
    assert {r.project_id for r in stored(server.engine)} == {ada}
    assert "observability" not in view(server.engine, bob)["evidence"]

    api_token = server.learner("carol")  # a learner's API token is not an ingest token
    for auth in (f"Bearer {api_token}", "Bearer ing_guess", "Basic eDp5", None):
        headers = {"Content-Type": "application/x-protobuf"}
        if auth:
            headers["Authorization"] = auth
        answer = httpx.post(f"{server.url}/v1/traces", content=b"", headers=headers)
        assert answer.status_code == 401
    # An ingest token opens nothing of the API.
    assert server.client(ada_token).get("/api/projects").status_code == 401

    newer = issue_token(server.engine, ada)
    assert export(server, ada_token, app_spans(1)) is SpanExportResult.FAILURE
    assert export(server, newer, app_spans(1)) is SpanExportResult.SUCCESS
    assert export(server, bob_token, app_spans(1)) is SpanExportResult.SUCCESS
    assert len(stored(server.engine, ada)) == 4 and len(stored(server.engine, bob)) == 2


def test_a_token_over_its_rate_gets_429(sqlite_url: str, tmp_path: Path) -> None:
    with running(sqlite_url, tmp_path / "home", rate_limits="ingest=2/minute") as srv:
        pid = new_project(srv.engine, "ada")
        client = srv.client(issue_token(srv.engine, pid))
        body = encode_spans(app_spans(1)).SerializeToString()
        codes = [client.post("/v1/traces", content=body,
                             headers={"Content-Type": "application/x-protobuf"}).status_code
                 for _ in range(3)]
        assert codes == [200, 200, 429]
        assert len(stored(srv.engine, pid)) == 4


def test_guessing_ingest_tokens_is_limited_per_address(sqlite_url: str, tmp_path: Path) -> None:
    with running(sqlite_url, tmp_path / "home", rate_limits="bad_token=2/minute") as srv:
        pid = new_project(srv.engine, "ada")
        body = encode_spans(app_spans(1)).SerializeToString()
        answers = [srv.client(f"guess-{n}").post(
            "/v1/traces", content=body, headers={"Content-Type": "application/x-protobuf"})
            for n in range(3)]
        assert [r.status_code for r in answers] == [401, 401, 429]
        assert int(answers[-1].headers["retry-after"]) >= 1
        # The right token from the same address (a shared NAT) still works.
        right = srv.client(issue_token(srv.engine, pid)).post(
            "/v1/traces", content=body, headers={"Content-Type": "application/x-protobuf"})
        assert right.status_code == 200
        assert len(stored(srv.engine, pid)) == 2


def test_the_span_cap_evicts_the_oldest_and_prune_keeps_recent(engine: Engine) -> None:
    pid = new_project(engine, "ada")
    for _ in range(4):
        store(engine, pid, encode_spans(app_spans(1)), cap=5)
    rows = stored(engine, pid)
    assert len(rows) == 5
    assert min(r.id or 0 for r in rows) == 4  # spans 1-3 went first
    with session_scope(engine) as s:
        old = s.get(ReceivedSpan, rows[0].id)
        assert old is not None
        old.received_at = datetime.now(UTC) - timedelta(days=10)
        s.add(old)
    assert prune_received(engine, 7) == 1
    assert len(stored(engine, pid)) == 4


# -- what the spans verify ---------------------------------------------------------------

def stated(engine: Engine, pid: int, **kinds: dict[str, Any]) -> None:
    with session_scope(engine) as s:
        for kind, details in kinds.items():
            s.add(Evidence(project_id=pid, kind=kind, details=details))


def harden_missing(engine: Engine, pid: int) -> list[str]:
    return [m["message"] for m in view(engine, pid)["gate"]["missing"]]


EVALS = {"cases": 20, "pass_rate": 0.9, "grader": "exact"}
CI = {"provider": "GitHub Actions"}


def test_traces_stand_in_for_a_stated_tool_and_link(engine: Engine) -> None:
    pid = new_project(engine, "ada")
    stated(engine, pid, evals=EVALS, ci_gate=CI)
    assert "the tracing tool you use" in harden_missing(engine, pid)
    store(engine, pid, encode_spans(app_spans(2)))
    assert harden_missing(engine, pid) == []


def test_a_stated_cost_the_traces_contradict_fails_with_both_values(engine: Engine) -> None:
    pid = new_project(engine, "ada")
    stated(engine, pid, evals=EVALS, ci_gate=CI,
           cost_tracking={"cost_usd": "0.05", "per": "request"})
    store(engine, pid, encode_spans(app_spans(2)))
    assert harden_missing(engine, pid) == [
        "you stated $0.05 per request; the 2 traces received measure $0.000200 per request "
        "(mean), more than 2x apart"]


def test_a_stated_tool_the_spans_do_not_show_fails(engine: Engine) -> None:
    pid = new_project(engine, "ada")
    stated(engine, pid, evals=EVALS, ci_gate=CI,
           observability={"tool": "LangSmith", "link": "https://smith.example/t"})
    store(engine, pid, encode_spans(app_spans(1, scope="logfire")))
    assert harden_missing(engine, pid) == [
        "you named LangSmith as the tracing tool; the 2 spans received show logfire"]


def test_other_providers_are_priced_and_unknown_models_stay_unknown(engine: Engine) -> None:
    pid = new_project(engine, "ada")
    store(engine, pid, encode_spans(app_spans(2, model="gpt-4o")))
    cost = view(engine, pid)["evidence"]["cost_tracking"]
    # genai-prices: gpt-4o at $2.50/MTok in and $10/MTok out.
    assert Decimal(cost["per_request_mean_usd"]) == Decimal("0.0045")
    assert cost["models"] == ["gpt-4o"]

    other = new_project(engine, "bob")
    store(engine, other, encode_spans(app_spans(2, model="my-own-finetune-7")))
    evidence = view(engine, other)["evidence"]
    assert "cost_tracking" not in evidence  # unknown, never $0
    assert evidence["observability"]["cost"]["unknown_models"] == ["my-own-finetune-7"]
    assert evidence["observability"]["cost"]["per_request_mean_usd"] is None


# -- the command line ---------------------------------------------------------------------

def test_ingest_token_and_import_traces_from_the_command_line(tmp_path: Path,
                                                               sqlite_url: str) -> None:

    env = coach_env(tmp_path / "home")
    engine = open_engine(sqlite_url)
    try:
        engine_pid = new_project(engine, "ada")
    finally:
        engine.dispose()
    base = ("--db", sqlite_url, "--user", "ada")
    issued = run_coach(*base, "projects", "ingest-token", str(engine_pid), "--json", env=env)
    assert issued.returncode == 0, issued.stderr
    data = json.loads(issued.stdout)
    assert set(data) == {"project_id", "token", "path"} and data["path"] == "/v1/traces"
    text = run_coach(*base, "projects", "ingest-token", str(engine_pid), "--url",
                     "https://coach.example", env=env)
    lines = text.stdout.splitlines()
    assert "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=https://coach.example/v1/traces" in lines
    assert any(line.startswith("OTEL_EXPORTER_OTLP_HEADERS=Authorization=Bearer%20ing_")
               for line in lines)
    someone_else = run_coach("--db", sqlite_url, "--user", "bob", "projects", "ingest-token",
                             str(engine_pid), env=env)
    assert someone_else.returncode == 1
    assert one_error_line(someone_else.stderr) == \
        f"coach: error: no project {engine_pid} in bob's portfolio"

    # The Collector's file exporter: one OTLP JSON request per line (and a broken line).
    exported = tmp_path / "traces.jsonl"
    exported.write_text("\n".join([json.dumps(otlp_json(app_spans(2))), "{oops",
                                   json.dumps(otlp_json(app_spans(1)))]) + "\n")
    imported = run_coach(*base, "projects", "import-traces", str(engine_pid), str(exported),
                         "--json", env=env)
    assert imported.returncode == 0, imported.stderr
    assert json.loads(imported.stdout) == {"project_id": engine_pid, "spans": 6,
                                           "rejected_spans": 0, "unreadable_lines": 1}
    shown = json.loads(run_coach(*base, "projects", "show", str(engine_pid), "--json",
                                 env=env).stdout)
    assert shown["evidence"]["observability"]["verified"] is True
    assert shown["evidence"]["observability"]["traces"] == 3
    text_view = run_coach(*base, "projects", "show", str(engine_pid), env=env).stdout
    assert "Tracing: verified — received 6 spans in 3 traces from handover-app" in text_view
    assert "Cost: verified — $0.0002000 per request (mean; p95" in text_view

    garbage = tmp_path / "garbage.txt"
    garbage.write_text("not otlp\n")
    failed = run_coach(*base, "projects", "import-traces", str(engine_pid), str(garbage),
                       env=env)
    assert failed.returncode == 1 and "no line is an OTLP JSON trace export" in failed.stderr


@pytest.mark.postgres
def test_ingest_and_its_evidence_on_postgresql(pg_url: str) -> None:
    engine = open_engine(pg_url)
    try:
        pid = new_project(engine, "ada")
        token = issue_token(engine, pid)
        from telemetry.ingest import project_for_token

        assert project_for_token(engine, token) == pid
        for _ in range(3):
            done = store(engine, pid, encode_spans(app_spans(2)), cap=10)
            assert done.accepted == 4 and done.rejected == 0
        assert len(stored(engine, pid)) == 10  # capped, oldest first
        evidence = view(engine, pid)["evidence"]
        assert evidence["observability"]["spans"] == 10
        assert evidence["cost_tracking"]["verified"] is True
        assert prune_received(engine, 0) == 10
    finally:
        engine.dispose()


def test_the_traces_records_are_updated_in_place_at_most_every_30_seconds(
        engine: Engine) -> None:
    pid = new_project(engine, "ada")
    store(engine, pid, encode_spans(app_spans(1)))
    assert view(engine, pid)["evidence"]["observability"]["spans"] == 2
    store(engine, pid, encode_spans(app_spans(1)))
    assert view(engine, pid)["evidence"]["observability"]["spans"] == 2  # not yet re-read
    with session_scope(engine) as s:
        for row in s.exec(select(Evidence).where(Evidence.project_id == pid)).all():
            row.checked_at = datetime.now(UTC) - timedelta(seconds=31)
            s.add(row)
    assert view(engine, pid)["evidence"]["observability"]["spans"] == 4
    with session_scope(engine) as s:
        kinds = [e.kind for e in s.exec(select(Evidence).where(Evidence.project_id == pid))]
    assert sorted(kinds) == ["cost_tracking", "observability"]  # one of each, kept current
