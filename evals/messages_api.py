"""A local Messages-API server for tests and benchmarks: real HTTP on 127.0.0.1.

Scripted replies are queued; every request is recorded. The real anthropic client
talks to it through `base_url`, so the SDK's streaming, retries and errors run for
real. With `cache=True` it also emulates prompt caching by prefix: a breakpoint whose
prefix was seen before is a cache read, a new one a cache write.
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

    def __post_init__(self) -> None:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server API
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                api.handle(self, body)

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
        message = self._message(item, body)
        if body.get("stream"):
            self._stream(h, message, request_id, item)
        else:
            self._json(h, 200, message, {"request-id": request_id})

    def _message(self, item: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        usage = item.get("usage") or self._usage(body, item["content"])
        content = [{k: v for k, v in b.items() if k != "raw_json"} for b in item["content"]]
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
            events.append({"type": "content_block_start", "index": i,
                           "content_block": {"type": "text", "text": ""}})
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
