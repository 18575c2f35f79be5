"""The graph's state: bounded, because the full transcript lives in the store."""

from __future__ import annotations

from typing import Any

# typing_extensions' TypedDict: on Python 3.11 pydantic can build a JSON schema only from
# this one, and the LangGraph server (Studio's input form) publishes the state's schema.
from typing_extensions import TypedDict

from seam.model import Message


class CoachState(TypedDict, total=False):
    incoming: str               # the learner's message that starts a turn
    messages: list[Message]     # a window: the last few turns plus this one
    summary: str                # a running summary of turns that left the window
    project_id: int | None      # the project this thread is coaching
    turn_start: int             # where this turn's messages begin in `messages`
    calls: int                  # model calls made this turn
    tool_calls: list[dict[str, Any]]  # this turn's tool calls: name, input, ok
    gate: dict[str, Any] | None       # the last gate decision this turn


class CoachInput(TypedDict):
    """What starts a turn; the input schema Studio's form shows."""

    incoming: str               # the learner's message
