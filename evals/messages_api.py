"""A local Messages-API server for tests and benchmarks: real HTTP on 127.0.0.1.

Scripted replies are queued; every request is recorded. The real anthropic client
talks to it through `base_url`, so the SDK's streaming, retries and errors run for
real. With `cache=True` it also emulates prompt caching by prefix: a breakpoint whose
prefix was seen before is a cache read, a new one a cache write.

Citations: a scripted text block may cite the request's `search_result` blocks (by index or
by `source`); the server answers with full `search_result_location` citations, as the API
does, streamed as `citations_delta` events, and refuses (400) a citation of a search result
that was not sent with citations enabled. Message Batches: `POST /v1/messages/batches`,
`GET /v1/messages/batches/{id}` (in progress for `batch_polls` retrievals, then ended) and
`GET …/{id}/results` (JSONL, in reverse order of the requests, so clients must match on
`custom_id`); each request takes the scripted reply queued for its custom_id in
`batch_script` (or the next scripted item), an `error(...)` becomes an errored result and
`EXPIRED` an expired one; usage is marked `service_tier: batch`.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

LOOKBACK = 20


def estimate(obj: Any) -> int:
    return max(1, len(json.dumps(obj, sort_keys=True)) // 4)


def text_reply(text: str, **kw: Any) -> dict[str, Any]:
    return reply([{"type": "text", "text": text}], **kw)


def cited_reply(parts: list[tuple[str, list[int | str]]], **kw: Any) -> dict[str, Any]:
    """Text blocks, each citing search results of the request (by index or `source`)."""
    return reply([{"type": "text", "text": text, "cite": refs} if refs else
                  {"type": "text", "text": text} for text, refs in parts], **kw)


EXPIRED: dict[str, Any] = {"expired": True}


def tool_reply(name: str, tool_input: dict[str, Any], *, tool_id: str | None = None,
               text: str | None = None, **kw: Any) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    seed = f"{name}:{json.dumps(tool_input, sort_keys=True)}:{time.perf_counter_ns()}"
    blocks.append({"type": "tool_use", "name": name, "input": tool_input,
                   "id": tool_id or "toolu_" + hashlib.sha1(seed.encode()).hexdigest()[:20]})
    return reply(blocks, stop_reason="tool_use", **kw)


def reply(content: list[dict[str, Any]], *, stop_reason: str = "end_turn",
          usage: dict[str, Any] | None = None, model: str | None = None) -> dict[str, Any]:
    """A scripted 200 response; usage is filled from the request unless given."""
    return {"status": 200, "content": content, "stop_reason": stop_reason, "usage": usage,
            "model": model}


def error(status: int, kind: str, message: str = "scripted error",
          headers: dict[str, str] | None = None) -> dict[str, Any]:
    return {"status": status, "error": {"type": kind, "message": message},
            "headers": headers or {}}


@dataclass
class MessagesAPI:
    """Start with `with MessagesAPI() as api:`; `api.base_url` goes to the client."""

    cache: bool = False
    # Each item is a scripted reply, or a callable that writes one from the request body.
    script: deque[Any] = field(default_factory=deque)
    requests: list[dict[str, Any]] = field(default_factory=list)
    seen_prefixes: set[str] = field(default_factory=set)
    default: dict[str, Any] | None = None
    batch_script: dict[str, dict[str, Any]] = field(default_factory=dict)
    batches: dict[str, dict[str, Any]] = field(default_factory=dict)
    batch_polls: int = 1

    def __post_init__(self) -> None:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server API
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                api.handle(self, body)

            def do_GET(self) -> None:  # noqa: N802 - http.server API
                api.handle_get(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> MessagesAPI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def queue(self, *items: Any) -> None:
        self.script.extend(items)

    @property
    def message_requests(self) -> list[dict[str, Any]]:
        return [r["body"] for r in self.requests if r["path"] == "/v1/messages"]

    # -- serving ----------------------------------------------------------------------

    def handle(self, h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        path = h.path.split("?")[0]
        with self._lock:
            self.requests.append({"path": path, "body": body,
                                  "headers": {k.lower(): v for k, v in h.headers.items()}})
            if path == "/v1/messages/batches":
                self._json(h, 200, self._create_batch(body))
                return
            if path.endswith("/count_tokens"):
                self._json(h, 200, {"input_tokens": estimate(
                    [body.get("system"), body.get("tools"), body.get("messages")])})
                return
            item = self.script.popleft() if self.script else self.default
        if callable(item):  # a responder: the reply is written from the request it answers
            item = item(body)
        if item is None:
            self._json(h, 500, {"type": "error", "error": {
                "type": "api_error", "message": "the test server has no scripted reply"}})
            return
        time.sleep(item.get("sleep", 0))
        request_id = f"req_{len(self.requests):06d}"
        if "error" in item:
            self._json(h, item["status"], {"type": "error", "error": item["error"]},
                       {"request-id": request_id, **item.get("headers", {})})
            return
        try:
            message = self._message(item, body)
        except ValueError as exc:
            self._json(h, 400, {"type": "error", "error": {
                "type": "invalid_request_error", "message": str(exc)}}, {"request-id": request_id})
            return
        if body.get("stream"):
            self._stream(h, message, request_id, item)
        else:
            self._json(h, 200, message, {"request-id": request_id})

    # -- Message Batches ---------------------------------------------------------------

    def _create_batch(self, body: dict[str, Any]) -> dict[str, Any]:
        """Every request is answered at creation (from the script); the batch reports
        `in_progress` for `batch_polls` retrievals, then `ended`."""
        batch_id = f"msgbatch_{len(self.batches) + 1:06d}"
        results = []
        for req in body.get("requests") or []:
            cid, params = req["custom_id"], req["params"]
            item = self.batch_script.pop(cid, None) or (
                self.script.popleft() if self.script else self.default)
            if item is None or "error" in item:
                err = (item or {}).get("error") or {"type": "api_error",
                                                    "message": "no scripted reply"}
                result: dict[str, Any] = {"type": "errored",
                                          "error": {"type": "error", "error": err}}
            elif item.get("expired"):
                result = {"type": "expired"}
            else:
                message = self._message(item, params)
                message["usage"] = {**message["usage"], "service_tier": "batch"}
                result = {"type": "succeeded", "message": message}
            results.append({"custom_id": cid, "result": result})
        self.batches[batch_id] = {"results": results, "polls": 0,
                                  "requests": body.get("requests") or []}
        return self._batch(batch_id)

    def _batch(self, batch_id: str) -> dict[str, Any]:
        b = self.batches[batch_id]
        ended = b["polls"] > self.batch_polls
        counts = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        for r in b["results"]:
            counts[r["result"]["type"]] += 1
        if not ended:
            counts = {**{k: 0 for k in counts}, "processing": len(b["results"])}
        return {"id": batch_id, "type": "message_batch",
                "processing_status": "ended" if ended else "in_progress",
                "request_counts": counts, "created_at": "2026-12-01T00:00:00Z",
                "expires_at": "2026-12-02T00:00:00Z", "archived_at": None,
                "cancel_initiated_at": None,
                "ended_at": "2026-12-01T00:05:00Z" if ended else None,
                "results_url": f"{self.base_url}/v1/messages/batches/{batch_id}/results"
                if ended else None}

    def handle_get(self, h: BaseHTTPRequestHandler) -> None:
        path = h.path.split("?")[0]
        parts = path.strip("/").split("/")
        with self._lock:
            self.requests.append({"path": path, "body": None,
                                  "headers": {k.lower(): v for k, v in h.headers.items()}})
            if parts[:3] != ["v1", "messages", "batches"] or len(parts) < 4 \
                    or parts[3] not in self.batches:
                self._json(h, 404, {"type": "error", "error": {
                    "type": "not_found_error", "message": f"no such batch: {path}"}})
                return
            batch = self.batches[parts[3]]
            if len(parts) == 4:
                batch["polls"] += 1
                self._json(h, 200, self._batch(parts[3]))
                return
            lines = "".join(json.dumps(r) + "\n" for r in reversed(batch["results"]))
        data = lines.encode()
        h.send_response(200)
        h.send_header("content-type", "application/binary")
        h.send_header("content-length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    @property
    def batch_requests(self) -> list[dict[str, Any]]:
        return [r["body"] for r in self.requests if r["path"] == "/v1/messages/batches"]

    def _message(self, item: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        usage = item.get("usage") or self._usage(body, item["content"])
        results = _search_results(body)
        content = [_cited(b, results) if "cite" in b else
                   {k: v for k, v in b.items() if k != "raw_json"} for b in item["content"]]
        return {"id": f"msg_{len(self.requests):06d}", "type": "message", "role": "assistant",
                "model": item.get("model") or body.get("model"), "content": content,
                "stop_reason": item["stop_reason"], "stop_sequence": None, "usage": usage}

    def _usage(self, body: dict[str, Any], content: list[dict[str, Any]]) -> dict[str, Any]:
        """Token counts by estimate; with caching on, split by breakpoint prefixes."""
        parts = [("tools", t) for t in body.get("tools") or []]
        system = body.get("system") or []
        parts += [("system", b) for b in (system if isinstance(system, list) else [system])]
        for m in body.get("messages", []):
            blocks = m["content"] if isinstance(m["content"], list) else [m["content"]]
            parts += [(m["role"], b) for b in blocks]
        total = sum(estimate(p) for p in parts)
        read = written = 0
        if self.cache:
            running = hashlib.sha256()
            digests, marks = [], []
            for i, (_, part) in enumerate(parts):
                clean = {k: v for k, v in part.items() if k != "cache_control"} \
                    if isinstance(part, dict) else part
                running.update(json.dumps(clean, sort_keys=True).encode())
                digests.append(running.hexdigest())
                if isinstance(part, dict) and part.get("cache_control"):
                    marks.append(i)
            # As the API does: from each breakpoint, look back up to 20 blocks for a
            # prefix written before; read up to the longest hit, write up to the last mark.
            upto = 0
            for i in marks:
                for j in range(i, max(-1, i - LOOKBACK - 1), -1):
                    if digests[j] in self.seen_prefixes:
                        upto = max(upto, j + 1)
                        break
            read = sum(estimate(p) for _, p in parts[:upto])
            last = marks[-1] + 1 if marks else 0
            written = sum(estimate(p) for _, p in parts[upto:last]) if last > upto else 0
            self.seen_prefixes.update(digests[i] for i in marks)
        return {"input_tokens": total - read - written, "output_tokens": estimate(content),
                "cache_read_input_tokens": read, "cache_creation_input_tokens": written,
                "cache_creation": {"ephemeral_5m_input_tokens": written,
                                   "ephemeral_1h_input_tokens": 0},
                "service_tier": "standard"}

    @staticmethod
    def _json(h: BaseHTTPRequestHandler, status: int, obj: Any,
              headers: dict[str, str] | None = None) -> None:
        data = json.dumps(obj).encode()
        h.send_response(status)
        h.send_header("content-type", "application/json")
        h.send_header("content-length", str(len(data)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)

    def _stream(self, h: BaseHTTPRequestHandler, message: dict[str, Any], request_id: str,
                item: dict[str, Any]) -> None:
        h.send_response(200)
        h.send_header("content-type", "text/event-stream")
        h.send_header("request-id", request_id)
        h.send_header("connection", "close")
        h.end_headers()
        h.close_connection = True
        for event in item.get("events") or sse_events(message, item["content"]):
            if event == "ERROR":
                event = {"type": "error", "error": item["stream_error"]}
            h.wfile.write(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode())
            h.wfile.flush()


def sse_events(message: dict[str, Any], scripted: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The SSE event sequence of a message: text in pieces, tool input in fragments
    (a scripted block's `raw_json` replaces its input's JSON, to send malformed input)."""
    usage = dict(message["usage"])
    start_usage = {**usage, "output_tokens": 1}
    events: list[dict[str, Any]] = [{"type": "message_start", "message": {
        **message, "content": [], "stop_reason": None, "usage": start_usage}}]
    events.append({"type": "ping"})
    for i, block in enumerate(message["content"]):
        if block["type"] == "text":
            start_block: dict[str, Any] = {"type": "text", "text": ""}
            if block.get("citations"):
                start_block["citations"] = []
            events.append({"type": "content_block_start", "index": i,
                           "content_block": start_block})
            for citation in block.get("citations") or []:
                events.append({"type": "content_block_delta", "index": i,
                               "delta": {"type": "citations_delta", "citation": citation}})
            text = block["text"]
            for j in range(0, len(text), 12):
                events.append({"type": "content_block_delta", "index": i,
                               "delta": {"type": "text_delta", "text": text[j:j + 12]}})
        else:
            start = {k: v for k, v in block.items() if k != "raw_json"}
            events.append({"type": "content_block_start", "index": i,
                           "content_block": {**start, "input": {}}})
            raw = scripted[i].get("raw_json") or json.dumps(block["input"])
            for j in range(0, len(raw), 7):
                events.append({"type": "content_block_delta", "index": i, "delta": {
                    "type": "input_json_delta", "partial_json": raw[j:j + 7]}})
        events.append({"type": "content_block_stop", "index": i})
    events.append({"type": "message_delta", "delta": {"stop_reason": message["stop_reason"],
                                                      "stop_sequence": None},
                   "usage": {"output_tokens": usage["output_tokens"]}})
    events.append({"type": "message_stop"})
    return events


def _search_results(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The request's search_result blocks in order, as the API counts them (in user
    messages and inside tool results)."""
    out: list[dict[str, Any]] = []
    for m in body.get("messages", []):
        blocks = m["content"] if isinstance(m["content"], list) else []
        for b in blocks:
            if b.get("type") == "search_result":
                out.append(b)
            elif b.get("type") == "tool_result" and isinstance(b.get("content"), list):
                out += [x for x in b["content"] if x.get("type") == "search_result"]
    return out


def _cited(block: dict[str, Any], results: list[dict[str, Any]]) -> dict[str, Any]:
    """A scripted text block's citations as the API returns them."""
    citations = []
    for ref in block["cite"]:
        index = ref if isinstance(ref, int) else next(
            (i for i, r in enumerate(results) if r.get("source") == ref), -1)
        if not 0 <= index < len(results):
            raise ValueError(f"citation of search result {ref!r}, which the request lacks")
        result = results[index]
        if not (result.get("citations") or {}).get("enabled"):
            raise ValueError(f"search result {index} was sent without citations enabled")
        content = result.get("content") or []
        citations.append({"type": "search_result_location", "search_result_index": index,
                          "source": result["source"], "title": result.get("title"),
                          "cited_text": "".join(c.get("text", "") for c in content),
                          "start_block_index": 0, "end_block_index": max(1, len(content))})
    return {"type": "text", "text": block["text"], "citations": citations}
