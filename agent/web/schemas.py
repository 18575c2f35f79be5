"""Request bodies and the documented shapes of the API's answers (for /docs and clients).

Answers are returned as built (like `coach … --json`), not filtered through these
models, so a field added to the CLI's JSON appears here too.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agent.errors import MAX_MESSAGE_BYTES

# Control characters other than tab and newlines: PostgreSQL refuses NUL in text and
# JSONB, and nothing a learner types needs the rest.
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(description="The learner's message (at most 32 KB of UTF-8).",
                      max_length=MAX_MESSAGE_BYTES)

    @field_validator("text")
    @classmethod
    def _printable(cls, value: str) -> str:
        if CONTROL.search(value):
            raise ValueError("control characters are not allowed in a message")
        return value


class ThreadCreated(BaseModel):
    thread_id: str


class ThreadItem(BaseModel):
    thread_id: str
    turns: int
    project_id: int | None
    project_title: str | None
    created_at: str
    updated_at: str


class ThreadList(BaseModel):
    threads: list[ThreadItem]


class TranscriptEntry(BaseModel):
    turn: int
    seq: int
    role: str
    content: list[dict[str, Any]]
    created_at: str
    html: str | None = Field(None, description="The coach's text rendered from Markdown "
                                                "(safe HTML: no raw HTML from content).")


class Transcript(BaseModel):
    thread_id: str
    turns: int
    project_id: int | None
    transcript: list[TranscriptEntry]


class Usage(BaseModel):
    input_tokens: int
    output_tokens: int
    cache_read_input_tokens: int
    cache_creation_input_tokens: int


class ToolCall(BaseModel):
    name: str
    input: dict[str, Any]
    ok: bool


class Turn(BaseModel):
    """One turn, exactly as a line of `coach chat --json`."""

    thread_id: str
    turn: int
    reply: str
    step: str | None
    project_id: int | None
    tool_calls: list[ToolCall]
    usage: Usage
    cost_usd: float | None
    model: str
    trace_id: str | None
    error: str | None = Field(default=None, description="Only when the model call failed.")


class CostRow(BaseModel):
    key: str
    calls: int
    input_tokens: int
    output_tokens: int
    cache_read_input_tokens: int
    cache_creation_input_tokens: int
    cost_usd: float | None
    unknown_cost_calls: int
    cache_savings_usd: float
    estimated_calls: int = Field(0, description="Offline calls: their tokens are estimates.")
    estimated_input_tokens: int = 0
    estimated_output_tokens: int = 0


class CostReport(BaseModel):
    """The `coach costs --json` shape, for the caller only."""

    by: str
    total_usd: float | None
    unknown_cost_calls: int
    cache_savings_usd: float
    cache_hit_share: float
    calls: int
    estimated_calls: int = 0
    estimated_input_tokens: int = 0
    estimated_output_tokens: int = 0
    rows: list[CostRow]


class BudgetOut(BaseModel):
    limit_usd: float | None = Field(description="None: no daily cap (COACH_BUDGET_USD=none).")
    spent_today_usd: float
    left_usd: float | None
    resets_at: str


class Problem(BaseModel):
    detail: str


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem} for code in (401, 404, 409, 413, 422)}
