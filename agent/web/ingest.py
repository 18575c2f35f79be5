"""`POST /v1/traces`: OTLP/HTTP from the learner's own app, authenticated by the project's
ingest token (`coach projects ingest-token ID`), never by a learner's API token.

The answer is the standard ExportTraceServiceResponse, in the request's encoding; a body
that does not decode answers 400 and stores nothing; a body over the limit, 413; a token
sending faster than its rate, 429 with Retry-After.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from google.protobuf import json_format

from agent.web.app import Web, web
from agent.web.ratelimit import RateLimited, client_address, guard_of, ingest_key
from telemetry.ingest import JSON, PROTOBUF, IngestError, decode, project_for_token, store

router = APIRouter(tags=["ingest"])
# Compressed body limit for one export; the SDK's default batch (512 spans) is far below.
INGEST_MAX_BODY = 4 * 1024 * 1024
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
    guard = guard_of(request)
    address = client_address(request)
    try:
        project_id = await run_in_threadpool(project_for_token, w.engine, token.strip())
        if project_id is None:
            # Guessing ingest tokens counts with guessing API tokens, per address; a valid
            # token from the same address (a shared NAT) still works.
            await run_in_threadpool(guard.hit, "bad_token", address)
            return _error(401, "unknown or replaced ingest token",
                          **{"WWW-Authenticate": "Bearer"})
        # Counted where every worker sees it (the database or Redis), like every limit.
        await run_in_threadpool(guard.hit, "ingest", ingest_key(token.strip()))
    except RateLimited as exc:
        return _error(429, str(exc.detail), **{"Retry-After": str(exc.retry_after)})
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
