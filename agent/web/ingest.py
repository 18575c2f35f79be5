"""`POST /v1/traces`: OTLP/HTTP from the learner's own app, authenticated by the project's
ingest token (`coach projects ingest-token ID`), never by a learner's API token.

The answer is the standard ExportTraceServiceResponse, in the request's encoding; a body
that does not decode answers 400 and stores nothing; a body over the limit, 413; a token
sending faster than its rate, 429 with Retry-After.
"""

from __future__ import annotations

import time
from collections import defaultdict, deque
from threading import Lock
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from google.protobuf import json_format

from agent.web.app import Web, web
from telemetry.ingest import JSON, PROTOBUF, IngestError, decode, project_for_token, store

router = APIRouter(tags=["ingest"])
# Compressed body limit for one export; the SDK's default batch (512 spans) is far below.
INGEST_MAX_BODY = 4 * 1024 * 1024
RATE_LIMIT = 120  # exports per token per window
RATE_WINDOW_S = 60.0

_seen: dict[str, deque[float]] = defaultdict(deque)
_seen_lock = Lock()


def ingest_allowed(key: str, limit: int = RATE_LIMIT, window_s: float = RATE_WINDOW_S) -> bool:
    """A moving window per token, in this worker's memory. One small function, so a shared
    limiter (Redis, the database) can replace it without touching the route."""
    now = time.monotonic()
    with _seen_lock:
        hits = _seen[key]
        while hits and now - hits[0] > window_s:
            hits.popleft()
        if len(hits) >= limit:
            return False
        hits.append(now)
        return True


def _error(status: int, message: str, **headers: str) -> Response:
    return JSONResponse({"detail": message}, status_code=status, headers=headers or None)


@router.post("/v1/traces", responses={400: {}, 401: {}, 413: {}, 415: {}, 429: {}})
async def receive_traces(request: Request, w: Annotated[Web, Depends(web)]) -> Response:
    """OTLP/HTTP traces (protobuf or JSON, optionally gzip) from the project's own app;
    `Authorization: Bearer INGEST_TOKEN`. Received spans verify the project's step-4
    observability and, where they carry GenAI/OpenInference usage, its cost per request."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return _error(401, "send the project's ingest token: `Authorization: Bearer TOKEN`",
                      **{"WWW-Authenticate": "Bearer"})
    project_id = await run_in_threadpool(project_for_token, w.engine, token.strip())
    if project_id is None:
        return _error(401, "unknown or replaced ingest token", **{"WWW-Authenticate": "Bearer"})
    if not ingest_allowed(token.strip(), w.ingest_rate):
        return _error(429, "too many exports for this token: slow down",
                      **{"Retry-After": str(int(RATE_WINDOW_S))})
    content_type = request.headers.get("content-type", "")
    body = await request.body()
    try:
        otlp = decode(body, content_type, request.headers.get("content-encoding", ""))
    except IngestError as exc:
        return _error(exc.status, str(exc))
    done = await run_in_threadpool(store, w.engine, project_id, otlp)
    answer = done.response()
    if content_type.split(";")[0].strip().lower() == JSON:
        return Response(json_format.MessageToJson(answer), media_type=JSON)
    return Response(answer.SerializeToString(), media_type=PROTOBUF)
