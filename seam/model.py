"""The model seam, in Anthropic Messages terms.

Every model the coach talks to (the offline coach, Claude) takes a `ModelRequest`
and returns a `ModelResponse` whose content is a list of Messages-API blocks
(`text`, `tool_use`), so the graph never knows which one it is talking to.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from seam.pricing import Usage

Block = dict[str, Any]
Message = dict[str, Any]


@dataclass
class ModelRequest:
    system: str
    messages: list[Message]
    tools: list[dict[str, Any]]
    max_tokens: int = 2048
    # The coach's records of the learner (project, step, gate): they change with every
    # call, so Claude gets them after the last cache breakpoint; the offline coach reads them.
    records: dict[str, Any] = field(default_factory=dict)
    # Who the call is for (user, thread, project, step, purpose): for the ledger.
    metadata: dict[str, Any] = field(default_factory=dict)
    # Called with each piece of reply text as it arrives, when the model streams.
    on_text: Callable[[str], None] | None = None


@dataclass
class ModelResponse:
    content: list[Block]
    stop_reason: str
    usage: Usage
    model: str
    id: str = ""
    request_id: str | None = None
    estimated: bool = False
    # Set by the ledger wrapper: what the call cost (None = not in the price table, i.e.
    # unknown, never $0) and its ledger row. They travel on the response, so the tracing
    # wrapper and the turn's totals read them without a side channel.
    cost_usd: Decimal | None = None
    ledger_id: int | None = None

    def text(self) -> str:
        return "\n\n".join(b["text"] for b in self.content if b.get("type") == "text").strip()


class ModelError(Exception):
    """A model call failed for good; the message names the cause (and request id)."""

    def __init__(self, message: str, *, kind: str = "error", request_id: str | None = None):
        super().__init__(message)
        self.kind = kind
        self.request_id = request_id


class Model(Protocol):
    name: str
    provider: str
    # The host calls go to (`server.address` in spans), or None for a model with no server.
    server_address: str | None

    def complete(self, request: ModelRequest) -> ModelResponse: ...

    def count_tokens(self, request: ModelRequest) -> int | None:
        """The prompt's exact token count, or None for a model that cannot count."""
        ...


class WrapperModel:
    """A model around another one (the ledger, the budget, tracing): it owns `inner`,
    `name` and `provider`, and forwards the optional abilities some models have."""

    def __init__(self, inner: Model):
        self.inner = inner
        self.name = inner.name
        self.provider = inner.provider
        self.server_address = inner.server_address

    def complete(self, request: ModelRequest) -> ModelResponse:
        return self.inner.complete(request)

    def count_tokens(self, request: ModelRequest) -> int | None:
        return self.inner.count_tokens(request)


def is_learner_text(message: Message) -> bool:
    """A user message the learner wrote, not one carrying tool results."""
    content = message.get("content")
    return message["role"] == "user" and not (
        isinstance(content, list) and any(b.get("type") == "tool_result" for b in content))


def text_of(message: Message) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    return "\n".join(b.get("text", "") for b in content or [] if b.get("type") == "text")
