"""Receiving the learner's own traces: OTLP/HTTP bodies (protobuf or JSON, optionally
gzip) decoded with the OpenTelemetry project's own protobuf classes, and the spans stored
small and bounded per project.

Used by `POST /v1/traces` and by `coach projects import-traces` (the Collector's file
exporter writes one OTLP JSON request per line). Nothing here trusts the body: a body that
does not decode is refused whole and stores nothing; a span without valid ids is rejected
alone and counted in the response's partial_success.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from sqlalchemy import Engine, delete, insert
from sqlmodel import col, select

from memory.models import IngestToken, Project, ReceivedSpan, utcnow
from memory.store import session_scope

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
MAX_DECODED_BYTES = 16 * 1024 * 1024  # after gunzip: a small gzip body can be a bomb
SPAN_CAP = 10_000  # per project; the oldest go first
# Attributes kept per span: what says which instrumentation made it and what model it
# called. Prompts, completions and everything else stay out of the coach's database.
KEPT_ATTRIBUTES = ("gen_ai.system", "gen_ai.provider.name", "gen_ai.operation.name",
                   "openinference.span.kind", "llm.provider", "llm.system")
MODEL_KEYS = ("gen_ai.response.model", "gen_ai.request.model", "llm.model_name")
PROVIDER_KEYS = ("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system")
TOKEN_KEYS = {
    "input_tokens": ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens",
                     "llm.token_count.prompt"),
    "output_tokens": ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens",
                      "llm.token_count.completion"),
    "cache_read_input_tokens": ("gen_ai.usage.cache_read.input_tokens",
                                "gen_ai.usage.cache_read_input_tokens",
                                "llm.token_count.prompt_details.cache_read"),
    "cache_creation_input_tokens": ("gen_ai.usage.cache_creation.input_tokens",
                                    "gen_ai.usage.cache_creation_input_tokens",
                                    "llm.token_count.prompt_details.cache_write"),
}


class IngestError(Exception):
    """A body refused whole; `status` is the HTTP answer (400, 413, 415)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass
class Ingested:
    accepted: int
    rejected: int
    reason: str = ""

    def response(self) -> ExportTraceServiceResponse:
        out = ExportTraceServiceResponse()
        if self.rejected:
            out.partial_success.rejected_spans = self.rejected
            out.partial_success.error_message = self.reason
        return out


# -- tokens ----------------------------------------------------------------------------

def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def issue_token(engine: Engine, project_id: int) -> str:
    """A new ingest token for the project; the old one stops working."""
    token = "ing_" + secrets.token_urlsafe(24)
    with session_scope(engine) as s:
        row = s.get(IngestToken, project_id)
        if row is None:
            row = IngestToken(project_id=project_id, token_hash=token_hash(token))
        row.token_hash, row.created_at = token_hash(token), utcnow()
        s.add(row)
    return token


def project_for_token(engine: Engine, token: str) -> int | None:
    with session_scope(engine) as s:
        row = s.exec(select(IngestToken).where(IngestToken.token_hash == token_hash(token))
                     ).first()
        if row is None or s.get(Project, row.project_id) is None:
            return None
        return row.project_id


# -- decoding --------------------------------------------------------------------------

def gunzip(body: bytes, limit: int = MAX_DECODED_BYTES) -> bytes:
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise IngestError(400, f"the body is not valid gzip: {exc}") from exc
    if len(out) > limit or inflater.unconsumed_tail:
        raise IngestError(413, f"the body inflates past {limit:,} bytes")
    if not inflater.eof:
        raise IngestError(400, "the gzip body is truncated")
    return out


def _hex_ids_to_base64(node: Any) -> None:
    """OTLP/JSON writes trace and span ids as hex; protobuf's JSON mapping wants base64."""
    if isinstance(node, list):
        for item in node:
            _hex_ids_to_base64(item)
        return
    if not isinstance(node, dict):
        return
    for key in ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"):
        value = node.get(key)
        if isinstance(value, str) and value:
            try:
                node[key] = base64.b64encode(bytes.fromhex(value)).decode()
            except ValueError as exc:
                raise IngestError(400, f"{key} {value[:40]!r} is not hex") from exc
    for value in node.values():
        if isinstance(value, dict | list):
            _hex_ids_to_base64(value)


def decode_json(text: str | bytes) -> ExportTraceServiceRequest:
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise IngestError(400, f"the body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise IngestError(400, "an OTLP JSON body is an object with resourceSpans")
    _hex_ids_to_base64(data)
    request = ExportTraceServiceRequest()
    try:
        json_format.ParseDict(data, request, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError) as exc:
        raise IngestError(400, f"not an OTLP trace request: {str(exc)[:200]}") from exc
    return request


def decode(body: bytes, content_type: str, encoding: str = "") -> ExportTraceServiceRequest:
    """The OTLP request a body carries, or IngestError."""
    if encoding.strip().lower() == "gzip":
        body = gunzip(body)
    elif encoding.strip().lower() not in ("", "identity"):
        raise IngestError(415, f"unsupported Content-Encoding {encoding!r}: use gzip or none")
    kind = content_type.split(";")[0].strip().lower()
    if kind == PROTOBUF:
        request = ExportTraceServiceRequest()
        try:
            request.ParseFromString(body)
        except (DecodeError, ValueError) as exc:
            raise IngestError(400, f"the body is not an OTLP protobuf request: {exc}") from exc
        return request
    if kind == JSON:
        return decode_json(body)
    raise IngestError(415, f"unsupported Content-Type {content_type!r}: send {PROTOBUF} or "
                           f"{JSON}")


def _value(v: AnyValue) -> Any:
    which = v.WhichOneof("value")
    if which in ("string_value", "bool_value", "int_value", "double_value"):
        return getattr(v, which)
    if which == "array_value":
        return [_value(x) for x in v.array_value.values][:20]
    return None  # kvlists and bytes are not kept


def _attributes(kvs: Iterable[KeyValue]) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in kvs}


def _int(attrs: dict[str, Any], keys: tuple[str, ...]) -> int:
    for key in keys:
        value = attrs.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
            return int(value)
    return 0


def _text(attrs: dict[str, Any], keys: tuple[str, ...], limit: int) -> str | None:
    for key in keys:
        value = attrs.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()[:limit]
    return None


def _when(nanos: int) -> datetime:
    return datetime.fromtimestamp(nanos / 1e9, UTC) if nanos > 0 else utcnow()


_WANTED = frozenset({*KEPT_ATTRIBUTES, *MODEL_KEYS, *PROVIDER_KEYS,
                     *(k for keys in TOKEN_KEYS.values() for k in keys)})


def _wanted_attributes(kvs: Iterable[KeyValue]) -> dict[str, Any]:
    # Only the keys the coach reads: a span's prompts and payloads are never even decoded.
    return {kv.key: _value(kv.value) for kv in kvs if kv.key in _WANTED}


def spans_of(request: ExportTraceServiceRequest, project_id: int
             ) -> tuple[list[dict[str, Any]], int]:
    """(rows of received_spans to insert, rejected span count) for one request. Plain rows,
    not ORM objects: a 1,000-span batch is inserted in one executemany."""
    rows: list[dict[str, Any]] = []
    rejected = 0
    now = utcnow()
    for rs in request.resource_spans:
        resource = _attributes(rs.resource.attributes)
        service = _text(resource, ("service.name",), 200) or "unknown_service"
        for ss in rs.scope_spans:
            scope = ss.scope.name[:200]
            for span in ss.spans:
                if len(span.trace_id) != 16 or len(span.span_id) != 8 \
                        or not any(span.trace_id):
                    rejected += 1
                    continue
                attrs = _wanted_attributes(span.attributes)
                row = {
                    "project_id": project_id, "trace_id": span.trace_id.hex(),
                    "span_id": span.span_id.hex(), "name": span.name[:200] or "(unnamed)",
                    "service": service, "scope": scope,
                    "start_time": _when(span.start_time_unix_nano),
                    "end_time": _when(span.end_time_unix_nano or span.start_time_unix_nano),
                    "model": _text(attrs, MODEL_KEYS, 100),
                    "provider": _text(attrs, PROVIDER_KEYS, 50),
                    "attributes": {k: attrs[k] for k in KEPT_ATTRIBUTES if k in attrs},
                    "received_at": now}
                for name, keys in TOKEN_KEYS.items():
                    row[name] = _int(attrs, keys)
                rows.append(row)
    return rows, rejected


def store(engine: Engine, project_id: int, request: ExportTraceServiceRequest,
          cap: int = SPAN_CAP) -> Ingested:
    rows, rejected = spans_of(request, project_id)
    spans = ReceivedSpan.__table__  # type: ignore[attr-defined]
    with session_scope(engine) as s:
        if rows:
            s.connection().execute(insert(spans), rows)
        # Bounded per project: past the cap the oldest spans make room.
        keep_from = s.exec(select(ReceivedSpan.id).where(ReceivedSpan.project_id == project_id)
                           .order_by(col(ReceivedSpan.id).desc()).offset(cap).limit(1)).first()
        if keep_from is not None:
            s.exec(delete(ReceivedSpan).where(
                col(ReceivedSpan.project_id) == project_id, col(ReceivedSpan.id) <= keep_from))
    reason = f"{rejected} spans without a valid trace_id/span_id" if rejected else ""
    return Ingested(len(rows), rejected, reason)


def import_file(engine: Engine, project_id: int, lines: Iterable[str]) -> tuple[Ingested, int]:
    """The Collector file exporter's output (one OTLP JSON request per line).
    Returns the totals and how many lines could not be read (they store nothing)."""
    total, bad = Ingested(0, 0), 0
    for line in lines:
        if not line.strip():
            continue
        try:
            done = store(engine, project_id, decode_json(line))
        except IngestError:
            bad += 1
            continue
        total = Ingested(total.accepted + done.accepted, total.rejected + done.rejected,
                         done.reason or total.reason)
    return total, bad


def prune_received(engine: Engine, keep_days: int) -> int:
    """Delete received spans older than `keep_days` days; returns how many went."""
    cutoff = datetime.now(UTC) - timedelta(days=keep_days)
    with session_scope(engine) as s:
        result = s.exec(delete(ReceivedSpan).where(
            col(ReceivedSpan.received_at) < cutoff))
        return int(result.rowcount or 0)
