"""The post-mortem interview (step 5, offline coach): the draft's questions asked in chat.

The latest draft's `[TODO: …]` questions (contradictions between records first) are asked
one at a time. Each plain answer is stored with its kind — a lesson (`record_lesson`) when
the question asks for a new one, otherwise a note on the record it is about
(`record_evidence` kind `other`, `details.answers` = the question's key) — and the draft is
redrafted at once, so the learner hears its word count and what the gate still needs.
`skip` leaves a question's [TODO] in place; `submit draft` submits the latest draft as the
learner's post-mortem once it passes the step-5 checks.

The offline coach calls `turn` from one place; it answers None for anything that is not an
interview turn, and the coach's usual policy goes on.
"""

from __future__ import annotations

import re
from typing import Any

from agent.answers import read_message
from agent.reader import understand
from agent.replies import compose_reply
from seam.model import Block
from tools.gates import POSTMORTEM_WORDS

Call = tuple[str, dict[str, Any]]
SUBMIT = re.compile(r"^\s*(?:please\s+)?submit(?:\s+(?:the|my|this))?\s+(?:draft|it|"
                    r"post-?mortem)\s*[.!]?\s*$", re.I)
SKIP = re.compile(r"^\s*(?:skip|pass|next question|i don'?t know|no idea)\s*[.!]?\s*$", re.I)
# Longer than this, a plain message is a post-mortem of the learner's own, not an answer.
MAX_ANSWER_WORDS = 100
KIND_TEXT = {"worked": "what worked", "didnt_work": "what didn't work",
             "tradeoff": "a tradeoff", "decision": "a decision", "note": "a note"}


def pending(project: dict[str, Any]) -> list[dict[str, Any]]:
    """The latest draft's unanswered questions, contradictions first."""
    draft = project.get("postmortem_draft") or {}
    todos = [t for t in draft.get("todos") or [] if not t.get("skipped")]
    return sorted(todos, key=lambda t: not t["key"].startswith("contradiction:"))


def turn(learner: str, calls: list[Block], results: dict[str, dict[str, Any]],
         ctx: dict[str, Any]) -> list[Call] | str | None:
    """The next tool calls or the reply of an interview turn; None when it is not one."""
    project = ctx.get("project")
    if not project:
        return None
    if not calls:
        return plan(learner, project) if project.get("step") == "postmortem" else None
    names = [c["name"] for c in calls]
    # A turn that drafted is step 5's, even once its gate has moved the project on.
    if "draft_postmortem" not in names or (project.get("step") != "postmortem"
                                            and "submit_postmortem" not in names):
        return None
    drafted = next(results.get(c["id"], {}) for c in reversed(calls)
                   if c["name"] == "draft_postmortem")
    if SUBMIT.match(learner) and "submit_postmortem" not in names and drafted.get("ok"):
        if drafted.get("failed"):
            return (f"The draft does not pass yet, so I haven't submitted it. {_status(drafted)}"
                    + _ask_next(drafted))
        if drafted.get("todos"):  # a post-mortem is not done while it still asks questions
            return (f"The draft still has {len(drafted['todos'])} [TODO]s, so I haven't "
                    f"submitted it. {_status(drafted)}{_ask_next(drafted)}")
        return [("submit_postmortem", {"project_id": project["id"], "text": drafted["text"]})]
    if "submit_postmortem" in names:
        submitted = next(results.get(c["id"], {}) for c in calls
                         if c["name"] == "submit_postmortem")
        if submitted.get("passed_checks") and "advance_step" not in names:
            return [("advance_step", {"project_id": project["id"]})]
        # The coach's usual reply on the submission and the gate, without the draft again.
        return compose_reply([c for c in calls if c["name"] != "draft_postmortem"], results,
                             ctx)
    return reply(calls, results, drafted, project)


def plan(learner: str, project: dict[str, Any]) -> list[Call] | str | None:
    reading = read_message(learner)
    pid = project["id"]
    if reading.command == "draft":
        return [("draft_postmortem", {"project_id": pid})]
    if reading.command or reading.answers:
        return None  # labelled answers (Worked:, Confirm:, Post-mortem:) go the usual way
    text = reading.plain.strip()
    if SUBMIT.match(text):
        return [("draft_postmortem", {"project_id": pid})]
    questions = pending(project)
    # A question of the learner's own (the playbook answers it) is not an answer.
    if not text or not questions or len(text.split()) > MAX_ANSWER_WORDS or text.endswith("?"):
        return None
    q = questions[0]
    if SKIP.match(text):
        return [store(pid, q, "", skipped=True), ("draft_postmortem", {"project_id": pid})]
    # Undo, commands in plain words, questions and a bare "thanks" are not answers.
    u = understand(text, "postmortem", "postmortem")
    if u.act in ("command", "undo", "question") or (u.act == "smalltalk"
                                                     and len(text.split()) < 4):
        return None
    return [store(pid, q, text), ("draft_postmortem", {"project_id": pid})]


def store(pid: int, question: dict[str, Any], answer: str, skipped: bool = False) -> Call:
    """A lesson when the question asks for a new one; otherwise a note keyed to it."""
    where, _, kind = str(question.get("store") or "note:note").partition(":")
    if where == "lesson" and not skipped:
        return ("record_lesson", {"project_id": pid, "kind": kind, "text": answer})
    return ("record_evidence", {"project_id": pid, "kind": "other", "details": {
        "answers": question["key"], "question": question["question"], "answer": answer,
        "kind": kind or "note", "skipped": skipped}})


def reply(calls: list[Block], results: dict[str, dict[str, Any]], drafted: dict[str, Any],
          project: dict[str, Any]) -> str:
    lines = []
    for c in calls:
        r = results.get(c["id"], {})
        if c["name"] == "record_lesson":
            lines.append(f"Noted as a lesson ({KIND_TEXT.get(r.get('kind', ''), 'a lesson')})."
                         if r.get("ok") else f"I couldn't store that: {r.get('error')}.")
        elif c["name"] == "record_evidence":
            d = c["input"].get("details", {})
            if not r.get("ok"):
                lines.append(f"I couldn't store that: {r.get('error')}.")
            elif d.get("skipped"):
                lines.append("Skipped; its [TODO] stays in the draft for you to fill later.")
            else:
                lines.append(f"Noted as {KIND_TEXT.get(d.get('kind'), 'a note')}, in your words.")
    if not drafted.get("ok"):
        return " ".join(lines + [f"I couldn't redraft: {drafted.get('error')}."])
    if not lines:  # the learner asked for a draft: its questions first, then the text
        return (f"Drafted post-mortem version {drafted['version']} from your records; every "
                "sentence names the records it rests on (`coach postmortem draft "
                f"{project['id']} --json` lists them). {_status(drafted)}{_ask_next(drafted)}"
                f"\n\n---\n\n{drafted['text']}")
    return " ".join(lines) + " " + _status(drafted) + _ask_next(drafted)


def _status(drafted: dict[str, Any]) -> str:
    low, high = POSTMORTEM_WORDS
    words = drafted["words"]
    length = (f"{words:,} words (the gate needs {low:,}–{high:,}"
              + (f", so {low - words:,} more)" if words < low else ")"))
    failed = drafted.get("failed") or []
    todos = len(drafted.get("todos") or [])
    checks = ("it passes the step-5 checks" + (f", with {todos} [TODO]s still open" if todos
                                               else "")
              if not failed else "still needed: " + "; ".join(failed))
    return f"Draft version {drafted['version']}: {length}; {checks}."


def _ask_next(drafted: dict[str, Any]) -> str:
    todos = sorted((t for t in drafted.get("todos") or [] if not t.get("skipped")),
                   key=lambda t: not t["key"].startswith("contradiction:"))
    if todos:
        first = todos[0]
        lead = ("Your records disagree here, so I'd rather ask than guess"
                if first["key"].startswith("contradiction:") else "Next question")
        return (f"\n\n{lead} ({len(todos)} left; answer in plain words, or say `skip`): "
                f"{first['question']}")
    if drafted.get("failed"):
        return ("\n\nNo questions are left; fill the remaining [TODO]s yourself, or send your "
                "own version with `Post-mortem: @file.md`.")
    return ("\n\nNo questions are left. Read the draft (`coach postmortem draft ID --out "
            "file.md` writes it to a file), then say `submit draft` to submit it as your "
            "post-mortem, or send your own version with `Post-mortem: @file.md`.")
