"""Test doubles behind the model seam, shared by every test (as pydantic-ai ships TestModel
and FunctionModel): a scripted model, one that fails chosen calls, one that raises when a
message says so."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from agent.offline import OfflineCoach
from seam.model import Block, Model, ModelError, ModelRequest, ModelResponse
from seam.pricing import Usage


def respond(*blocks: Block, stop_reason: str | None = None) -> ModelResponse:
    uses = any(b["type"] == "tool_use" for b in blocks)
    return ModelResponse(content=list(blocks),
                         stop_reason=stop_reason or ("tool_use" if uses else "end_turn"),
                         usage=Usage(input_tokens=10, output_tokens=5), model="scripted")


def text(value: str) -> Block:
    return {"type": "text", "text": value}


def use(id_: str, name: str, input_: Any) -> Block:
    return {"type": "tool_use", "id": id_, "name": name, "input": input_}


class ScriptedModel:
    """A Model that answers with queued responses and remembers every request."""

    name = "scripted"
    provider = "test"
    server_address: str | None = None

    def __init__(self, *responses: ModelResponse | list[Block]) -> None:
        self.queue: list[ModelResponse | list[Block]] = list(responses)
        self.requests: list[ModelRequest] = []
        self.default: Callable[[ModelRequest], list[Block]] | None = None

    def complete(self, request: ModelRequest) -> ModelResponse:
        # Copy the messages: the graph builds new lists, but be safe about later mutation.
        self.requests.append(ModelRequest(
            system=request.system, messages=json.loads(json.dumps(request.messages)),
            tools=request.tools, records=request.records, metadata=request.metadata))
        if self.queue:
            item = self.queue.pop(0)
        elif self.default is not None:
            item = self.default(request)
        else:
            raise AssertionError("the scripted model ran out of responses")
        if isinstance(item, ModelResponse):
            return item
        return respond(*item)

    def count_tokens(self, request: ModelRequest) -> int | None:
        return None


class FlakyModel:
    """The offline coach (or another model), except that chosen calls (1-based, counted
    across turns) fail as an overloaded API would."""

    name = "offline"
    provider = "offline"
    server_address: str | None = None

    def __init__(self, inner: Model | None = None) -> None:
        self.inner = inner or OfflineCoach()
        self.calls = 0
        self.fail_on: set[int] = set()

    def complete(self, request: ModelRequest) -> ModelResponse:
        self.calls += 1
        if self.calls in self.fail_on:
            raise ModelError("overloaded (request req_123)", kind="overloaded",
                             request_id="req_123")
        return self.inner.complete(request)

    def count_tokens(self, request: ModelRequest) -> int | None:
        return None


class ExplodingCoach(OfflineCoach):
    """The offline coach, which crashes (a bug, not a model error) on the message `x`."""

    def complete(self, request: ModelRequest) -> ModelResponse:
        if request.messages[-1]["content"][0].get("text") == "x":
            raise RuntimeError("boom")
        return super().complete(request)
