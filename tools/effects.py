"""A tool's effect and the record of its call commit together, or neither does.

A turn can run the same tool call twice: a `coach chat` killed after a tool stored
something but before the turn was recorded is sent again, and the offline coach, given
the same history, makes the same calls with the same ids; LangGraph re-runs a tools node
from a checkpoint with the ids it already had. A writing tool therefore adds a
`tool_calls` row, keyed by the learner and the call's tool_use id, in the same
transaction as its effect (`record_call`), and the dispatch (`tools.base.Tool`) looks the
id up first (`recorded_call`): a call already made is answered with its recorded result.

A call that failed records nothing, so a retry runs it again: its effect rolled back.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from sqlmodel import Session

from memory.models import ToolCall
from memory.store import session_scope

if TYPE_CHECKING:
    from tools.base import ToolContext


def record_call(s: Session, ctx: ToolContext, result: dict[str, Any]) -> dict[str, Any]:
    """Record this call's result in `s`, the session holding its effect; returns `result`.

    Without a call id (a script, the CLI's own drafting) there is nothing to key it by."""
    if ctx.call_id:
        # As the model will read it: the replay must be what the first answer said.
        stored = json.loads(json.dumps(result, default=str, ensure_ascii=False))
        s.add(ToolCall(user_id=ctx.user_id, call_id=ctx.call_id, tool=ctx.call_tool,
                       thread_id=ctx.thread_id, result=stored))
    return result


def recorded_call(ctx: ToolContext) -> ToolCall | None:
    """The learner's earlier run of this call, if its effect was committed."""
    if not ctx.call_id:
        return None
    with session_scope(ctx.engine) as s:
        return s.get(ToolCall, (ctx.user_id, ctx.call_id))
