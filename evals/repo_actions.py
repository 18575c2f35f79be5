"""What an eval case does to the learner's world between messages: change the files of
their repository (and commit), or import the traces their app sent.

Cases name these as pseudo-messages: `FIX_REPO` writes the case's `fix_files` and commits
them; `IMPORT_TRACES` imports an OpenTelemetry Collector file-export line of spans with
GenAI usage into the learner's project (`coach projects import-traces`'s path).
"""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import Engine
from sqlmodel import col, select

from memory.models import Project
from memory.store import session_scope
from telemetry.ingest import import_file

ACTIONS = ("FIX_REPO", "IMPORT_TRACES")
_GIT_ENV = {"GIT_AUTHOR_NAME": "Eval Learner", "GIT_AUTHOR_EMAIL": "eval@example.invalid",
            "GIT_COMMITTER_NAME": "Eval Learner", "GIT_COMMITTER_EMAIL": "eval@example.invalid",
            "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1",
            "PATH": "/usr/bin:/bin"}


def change_files(repo: Path, files: dict[str, str | None]) -> None:
    """Write (or, for None, delete) files in the repository and commit the change."""
    if not files:
        return
    for rel, text in files.items():
        path = repo / rel
        if text is None:
            path.unlink(missing_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    for args in (["add", "-A"], ["commit", "-q", "--allow-empty", "-m", "eval change"]):
        subprocess.run(["git", "-C", str(repo), *args], check=True, env=_GIT_ENV,
                       capture_output=True, timeout=30)


def traces_line(requests: int = 4, model: str = "claude-haiku-5-5") -> str:
    """One OTLP JSON request (hex ids, as the Collector's file exporter writes it)."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource({"service.name": "handover-helper"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("opentelemetry.instrumentation.anthropic")
    for _ in range(requests):
        with tracer.start_as_current_span("POST /summarise"), \
                tracer.start_as_current_span(f"chat {model}") as span:
            span.set_attributes({"gen_ai.operation.name": "chat",
                                 "gen_ai.provider.name": "anthropic",
                                 "gen_ai.request.model": model,
                                 "gen_ai.usage.input_tokens": 30_000,
                                 "gen_ai.usage.output_tokens": 2_000})
    provider.shutdown()
    data = json_format.MessageToDict(encode_spans(list(memory.get_finished_spans())))
    _hex_ids(data)
    return json.dumps(data)


def _hex_ids(node: Any) -> None:
    if isinstance(node, dict):
        for key in ("traceId", "spanId", "parentSpanId"):
            if isinstance(node.get(key), str):
                node[key] = base64.b64decode(node[key]).hex()
        for value in node.values():
            _hex_ids(value)
    elif isinstance(node, list):
        for item in node:
            _hex_ids(item)


def act(message: str, engine: Engine, repo: Path, fix_files: dict[str, str | None]) -> bool:
    """Carry out a pseudo-message; False when `message` is a learner's message."""
    if message == "FIX_REPO":
        change_files(repo, fix_files)
        return True
    if message == "IMPORT_TRACES":
        with session_scope(engine) as s:
            project = s.exec(select(Project).order_by(col(Project.id))).first()
        if project is not None and project.id is not None:
            import_file(engine, project.id, [traces_line()])
        return True
    return False
