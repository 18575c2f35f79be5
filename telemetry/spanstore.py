"""The local span store: finished spans written to the coach's own database.

`SpanStoreExporter` is an ordinary SpanExporter (one transaction per batch).
`TurnSpanProcessor` hands it a whole turn at once: it holds a trace's spans until
the trace's local root ends, then exports them together. One write per turn keeps
the overhead small (see BENCHMARKS.md), needs no background thread, and means a
turn's trace is readable the moment the turn returns.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import col

from memory.models import StoredSpan, User

log = logging.getLogger(__name__)
# Spans held for roots that never ended (a crash mid-turn) are written once this many wait.
MAX_HELD = 4096


def _hex(value: int, width: int) -> str:
    return format(value, f"0{width}x")


def _time(ns: int | None) -> datetime:
    return datetime.fromtimestamp((ns or 0) / 1e9, UTC)


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


class SpanStoreExporter(SpanExporter):
    """Writes spans to the `spans` table; never raises into the code being traced."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._users: dict[str, int] = {}

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if not spans:
            return SpanExportResult.SUCCESS
        try:
            with self.engine.begin() as conn:
                rows = [self._row(conn, span) for span in spans]
                conn.execute(insert(StoredSpan.__table__), rows)  # type: ignore[attr-defined]
        except SQLAlchemyError as exc:
            log.warning("could not store %d spans: %s", len(spans), exc)
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def _user_id(self, conn: Any, name: str) -> int | None:
        if name not in self._users:
            found = conn.execute(select(col(User.id)).where(col(User.name) == name)).first()
            if found is None:
                return None
            self._users[name] = found[0]
        return self._users[name]

    def _row(self, conn: Any, span: ReadableSpan) -> dict[str, Any]:
        ctx = span.get_span_context()
        assert ctx is not None
        attributes = {k: _plain(v) for k, v in (span.attributes or {}).items()}
        user = attributes.get("user.id")
        message = span.status.description
        if not message:
            message = next((str(e.attributes.get("exception.message"))
                            for e in span.events if e.name == "exception" and e.attributes),
                           None)
        return {
            "trace_id": _hex(ctx.trace_id, 32), "span_id": _hex(ctx.span_id, 16),
            "parent_id": _hex(span.parent.span_id, 16) if span.parent else None,
            "name": span.name[:200], "kind": span.kind.name,
            "start_time": _time(span.start_time), "end_time": _time(span.end_time),
            "duration_us": max(0, ((span.end_time or 0) - (span.start_time or 0)) // 1000),
            "status": span.status.status_code.name.lower(), "status_message": message,
            # Round-tripped through JSON so odd attribute values cannot break the insert.
            "attributes": json.loads(json.dumps(attributes, default=str)),
            "user_id": self._user_id(conn, user) if isinstance(user, str) else None,
            "thread_id": attributes.get("gen_ai.conversation.id"),
        }

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class TurnSpanProcessor(SpanProcessor):
    """Exports each trace's spans together when its local root span ends."""

    def __init__(self, exporter: SpanExporter):
        self.exporter = exporter
        self._held: dict[int, list[ReadableSpan]] = {}
        self._count = 0
        self._lock = threading.Lock()

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        ctx = span.get_span_context()
        if ctx is None or not ctx.trace_flags.sampled:
            return
        root = span.parent is None or span.parent.is_remote
        with self._lock:
            held = self._held.setdefault(ctx.trace_id, [])
            held.append(span)
            self._count += 1
            if root:
                batch = self._held.pop(ctx.trace_id)
                self._count -= len(batch)
            elif self._count >= MAX_HELD:
                batch = self._take_all()
            else:
                return
        self.exporter.export(batch)

    def _take_all(self) -> list[ReadableSpan]:
        batch = [s for spans in self._held.values() for s in spans]
        self._held.clear()
        self._count = 0
        return batch

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        # Spans of a turn still running stay held; a flush writes only what is complete
        # unless nothing will complete (shutdown).
        return True

    def shutdown(self) -> None:
        with self._lock:
            batch = self._take_all()
        if batch:
            self.exporter.export(batch)
        self.exporter.shutdown()
