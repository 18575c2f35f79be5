"""Message content in the GenAI conventions' JSON shape, with secrets taken out.

Content is recorded only when the learner opted in
(`OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`); even then an API key
must never reach a span, so every string recorded passes through `Redactor`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

CAPTURE_VARIABLE = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
SECRET_VARIABLES = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN")
# Anthropic keys and bearer tokens a learner might paste into a message.
KEY_PATTERN = re.compile(r"sk-ant-[A-Za-z0-9_\-]{8,}|(?i:bearer)\s+[A-Za-z0-9._~+/\-]{16,}=*")
REDACTED = "[REDACTED]"
# A captured value this long says enough; the rest would only bloat the span store.
MAX_CONTENT_CHARS = 16_000


def capture_content(env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    return env.get(CAPTURE_VARIABLE, "").strip().lower() == "true"


class Redactor:
    """Replaces the process's API keys, and anything shaped like one, in recorded text."""

    def __init__(self, secrets: Iterable[str] | None = None):
        if secrets is None:
            secrets = (os.environ.get(name, "") for name in SECRET_VARIABLES)
        # Short values would redact ordinary words; real keys are long.
        self.secrets = sorted({s for s in secrets if len(s) >= 8}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        text = KEY_PATTERN.sub(REDACTED, text)
        if len(text) > MAX_CONTENT_CHARS:
            text = text[:MAX_CONTENT_CHARS] + "…[truncated]"
        return text

    def json(self, value: Any) -> str:
        return self(json.dumps(value, ensure_ascii=False, default=str))


def _part(block: dict[str, Any]) -> dict[str, Any]:
    kind = block.get("type")
    if kind == "text":
        return {"type": "text", "content": block.get("text", "")}
    if kind == "tool_use":
        return {"type": "tool_call", "id": block.get("id"), "name": block.get("name"),
                "arguments": block.get("input")}
    if kind == "tool_result":
        return {"type": "tool_call_response", "id": block.get("tool_use_id"),
                "response": block.get("content")}
    return {"type": kind or "unknown"}


def message(role: str, content: Any, finish_reason: str | None = None) -> dict[str, Any]:
    blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content or []
    out: dict[str, Any] = {"role": role, "parts": [_part(b) for b in blocks]}
    if finish_reason is not None:
        out["finish_reason"] = finish_reason
    return out


def input_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [message(m["role"], m.get("content")) for m in messages]


def system_instructions(system: str) -> list[dict[str, Any]]:
    return [{"type": "text", "content": system}]


def io_attributes(redact: Redactor, input_value: Any, output_value: Any) -> dict[str, Any]:
    """OpenInference's input/output, which Phoenix's trace list and sessions (and Langfuse)
    show: text stays text, anything else is JSON. Only with content capture on."""
    out: dict[str, Any] = {}
    for side, value in (("input", input_value), ("output", output_value)):
        if value is None:
            continue
        if isinstance(value, str):
            out[f"{side}.value"], out[f"{side}.mime_type"] = redact(value), "text/plain"
        else:
            out[f"{side}.value"], out[f"{side}.mime_type"] = redact.json(value), \
                "application/json"
    return out


def reply_text(content: list[dict[str, Any]]) -> str:
    """What a model call said, as the learner would read it (tool calls left out)."""
    return "\n\n".join(b.get("text", "") for b in content if b.get("type") == "text").strip()
