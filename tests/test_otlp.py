"""OTLP/HTTP export from a real `coach chat` process to a receiver the test runs on
127.0.0.1, decoded with opentelemetry-proto; and a collector that is down."""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from telemetry.metrics import DURATION_BUCKETS
from tests.learner import (
    assert_turn_shape,
    coach_env,
    json_turns,
    lines_in,
    run_coach,
    start_coach,
)

pytestmark = pytest.mark.slow

MESSAGES = ["Title: Handover Helper", "status"]


def value(v: AnyValue) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [value(x) for x in v.array_value.values]
    return getattr(v, kind) if kind else None


def attrs(items: Any) -> dict[str, Any]:
    return {kv.key: value(kv.value) for kv in items}


@dataclass
class Collector:
    """An OTLP/HTTP receiver: decodes trace and metric export requests, answers 200."""

    traces: list[tuple[str, ExportTraceServiceRequest]] = field(default_factory=list)
    metrics: list[ExportMetricsServiceRequest] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server API
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                if self.headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                collector.headers.append({k.lower(): v for k, v in self.headers.items()})
                reply: Any
                if self.path.endswith("/v1/metrics"):
                    collector.metrics.append(ExportMetricsServiceRequest.FromString(body))
                    reply = ExportMetricsServiceResponse()
                else:
                    collector.traces.append((self.path,
                                             ExportTraceServiceRequest.FromString(body)))
                    reply = ExportTraceServiceResponse()
                data = reply.SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def spans(self) -> list[tuple[dict[str, Any], Span]]:
        """Every span received, with its resource's attributes."""
        return [(attrs(rs.resource.attributes), span) for _, request in self.traces
                for rs in request.resource_spans for ss in rs.scope_spans for span in ss.spans]


@pytest.fixture
def collector() -> Iterator[Collector]:
    c = Collector()
    c.thread.start()
    yield c
    c.server.shutdown()
    c.server.server_close()
    c.thread.join()


def chat(env: dict[str, str], db: str) -> list[dict[str, Any]]:
    done = run_coach("--db", db, "--user", "ada", "chat", "--json", env=env,
                     stdin=lines_in(MESSAGES))
    assert done.returncode == 0, done.stderr
    turns = json_turns(done.stdout)
    assert len(turns) == len(MESSAGES)
    for turn in turns:
        assert_turn_shape(turn)
    return turns


def test_a_chat_process_exports_its_spans_and_metrics_before_it_exits(
        collector, coach_home, tmp_path):
    env = coach_env(coach_home, OTEL_EXPORTER_OTLP_ENDPOINT=collector.url)
    turns = chat(env, str(tmp_path / "c.db"))

    received = collector.spans()
    assert {path for path, _ in collector.traces} == {"/v1/traces"}
    assert {r["service.name"] for r, _ in received} == {"portfolio-coach"}
    by_trace: dict[str, list[Span]] = {}
    for _, span in received:
        by_trace.setdefault(span.trace_id.hex(), []).append(span)
    assert set(by_trace) == {t["trace_id"] for t in turns}
    first = by_trace[turns[0]["trace_id"]]
    ids = {s.span_id: s for s in first}
    [root] = [s for s in first if not s.parent_span_id]
    assert root.name == "invoke_agent coach"
    root_attrs = attrs(root.attributes)
    assert root_attrs["gen_ai.conversation.id"] == turns[0]["thread_id"]
    assert root_attrs["gen_ai.agent.name"] == "coach" and root_attrs["user.id"] == "ada"
    chats = [s for s in first if s.name == "chat offline"]
    assert len(chats) == 2
    for span in chats:
        assert span.kind == Span.SPAN_KIND_CLIENT
        assert ids[span.parent_span_id].name == "node coach"
        assert ids[ids[span.parent_span_id].parent_span_id].name == "invoke_agent coach"
    usage = turns[0]["usage"]
    # The offline coach's counts are estimates: under the coach's own names only.
    assert sum(attrs(s.attributes)["coach.usage.estimated.input_tokens"] for s in chats) == \
        usage["input_tokens"] + usage["cache_read_input_tokens"] + \
        usage["cache_creation_input_tokens"]
    for span in chats:
        names = attrs(span.attributes)
        assert not [k for k in names if k.startswith(("gen_ai.usage.", "llm.token_count."))]
    [tool] = [s for s in first if s.name.startswith("execute_tool ")]
    assert attrs(tool.attributes)["gen_ai.tool.name"] == "create_project"
    assert ids[tool.parent_span_id].name == "node tools"

    metrics = {m.name: m for request in collector.metrics for rm in request.resource_metrics
               for sm in rm.scope_metrics for m in sm.metrics}
    # No token-usage points: estimates are not usage. Durations are real.
    assert "gen_ai.client.token.usage" not in metrics
    duration = metrics["gen_ai.client.operation.duration"].histogram.data_points
    assert tuple(duration[0].explicit_bounds) == tuple(float(b) for b in DURATION_BUCKETS)


def test_service_name_traces_endpoint_and_headers_come_from_the_standard_variables(
        collector, coach_home, tmp_path):
    env = coach_env(coach_home, OTEL_SERVICE_NAME="coach-under-test",
                    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=f"{collector.url}/custom/traces",
                    OTEL_EXPORTER_OTLP_HEADERS="authorization=Basic cGs6c2s=")
    turns = chat(env, str(tmp_path / "c.db"))
    assert {path for path, _ in collector.traces} == {"/custom/traces"}  # used as is
    assert {r["service.name"] for r, _ in collector.spans()} == {"coach-under-test"}
    assert all(h.get("authorization") == "Basic cGs6c2s=" for h in collector.headers)
    assert {s.trace_id.hex() for _, s in collector.spans()} == {t["trace_id"] for t in turns}
    assert collector.metrics == []  # no metrics endpoint was configured


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_a_collector_that_is_down_neither_breaks_nor_noticeably_slows_a_chat(
        coach_home, tmp_path):
    env = coach_env(coach_home, OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{closed_port()}")
    db = str(tmp_path / "c.db")
    with start_coach("--db", db, "--user", "ada", "chat", "--json", env=env) as process:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(lines_in(MESSAGES))
        process.stdin.close()
        turns = [json.loads(line) for line in process.stdout]  # each as it is answered
        last_turn = time.perf_counter()
        assert process.wait(timeout=60) == 0
        exit_delay = time.perf_counter() - last_turn
    assert len(turns) == len(MESSAGES) and all(t.get("error") is None for t in turns)
    # The turns never wait for the collector; the exit-time flush gives up within seconds.
    assert exit_delay < 4.0, exit_delay
    # The local span store still has every turn.
    listed = run_coach("--db", db, "--user", "ada", "traces", "list", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert {t["trace_id"] for t in json_turns(listed.stdout)[0]["traces"]} == \
        {t["trace_id"] for t in turns}
