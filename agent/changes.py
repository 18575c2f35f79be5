"""What the offline coach stored, as a stack it can undo, rebuilt from the conversation.

Nothing extra is persisted: every stored change is a tool call in the thread's messages,
and the value a field had before it is known from the call that set it earlier (a
create_project's input, or the project view an update_project returns). The window keeps
the last turns, so the most recent changes can always be undone; a field last set before
the window is reported as unknown rather than guessed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from seam.model import Message, is_learner_text, text_of

FIELDS = ("title", "problem", "audience", "personal_context", "success_criteria",
          "capabilities", "repo", "mvp_scope", "usage_note")
LIST_FIELDS = ("capabilities", "mvp_scope")
UNKNOWN = object()
STORING = ("create_project", "update_project", "record_evidence", "record_lesson",
           "check_deployment", "submit_postmortem", "start_next_project")


@dataclass
class Change:
    tool: str
    project_id: int | None
    values: dict[str, Any]
    before: dict[str, Any] = field(default_factory=dict)
    turn: int = 0                  # which learner message (counted from 1) made it

    def fields(self) -> list[str]:
        return [k for k in self.values if k in FIELDS]

    def revert_args(self) -> tuple[dict[str, Any], list[str]]:
        """update_project arguments that put the fields back, and the fields that can't be."""
        args: dict[str, Any] = {}
        stuck: list[str] = []
        for name in self.fields():
            old = self.before.get(name, UNKNOWN)
            # The store refuses an empty title, repository or feature list.
            if old is UNKNOWN or (not old and name in ("title", "repo", "mvp_scope")):
                stuck.append(name)
            else:
                args[name] = old
        return args, stuck


def tool_results(messages: list[Message]) -> dict[str, tuple[bool, dict[str, Any]]]:
    """Each tool_result in `messages` by its tool_use id: (ok, the result's JSON object).
    A result that is not a JSON object reads as `{"error": its text}`."""
    out: dict[str, tuple[bool, dict[str, Any]]] = {}
    for m in messages:
        if m["role"] != "user" or not isinstance(m["content"], list):
            continue
        for b in m["content"]:
            if b.get("type") == "tool_result":
                try:
                    body = json.loads(b.get("content") or "{}")
                except json.JSONDecodeError:
                    body = {"error": b.get("content")}
                out[b["tool_use_id"]] = (not b.get("is_error"),
                                         body if isinstance(body, dict) else {})
    return out


def change_stack(messages: list[Message], is_undo: Any) -> list[Change]:
    """The stored changes still in effect, oldest first; `is_undo(text)` says which learner
    messages were undos, whose reverting calls pop the stack instead of pushing onto it."""
    results = tool_results(messages)
    known: dict[int, dict[str, Any]] = {}
    stack: list[Change] = []
    undoing = False
    turn = 0
    for m in messages:
        if is_learner_text(m):
            undoing = bool(is_undo(text_of(m)))
            turn += 1
            continue
        if m["role"] != "assistant" or not isinstance(m["content"], list):
            continue
        for b in m["content"]:
            if b.get("type") != "tool_use" or b.get("name") not in STORING:
                continue
            ok, body = results.get(b["id"], (False, {}))
            if not ok:
                continue
            args = dict(b.get("input") or {})
            pid = args.pop("project_id", None) or body.get("project_id")
            state = known.setdefault(pid, {}) if isinstance(pid, int) else {}
            change = Change(b["name"], pid, args,
                            {k: state.get(k, UNKNOWN) for k in args if k in FIELDS}, turn)
            if b["name"] == "create_project" and isinstance(pid, int):
                known[pid] = {k: [] if k in LIST_FIELDS else "" for k in FIELDS}
                known[pid].update({k: v for k, v in args.items() if k in FIELDS})
                change.before = {k: UNKNOWN for k in args}
            view = body.get("project")
            if isinstance(view, dict) and isinstance(pid, int):
                known.setdefault(pid, {}).update({k: view.get(k) for k in FIELDS if k in view})
            if undoing and b["name"] == "update_project":
                if stack:
                    stack.pop()
                continue
            stack.append(change)
    return stack


def learner_turns(messages: list[Message]) -> int:
    return sum(1 for m in messages if is_learner_text(m))


def last_change(messages: list[Message], is_undo: Any, project_id: int | None
                ) -> Change | None:
    stack = [c for c in change_stack(messages, is_undo) if c.project_id == project_id]
    return stack[-1] if stack else None
