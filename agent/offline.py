"""The offline coach: a deterministic policy behind the same seam as Claude.

It reads the learner's message, emits the tool calls a Claude model would, asks
the gate (`advance_step`) once the coach's view says nothing is missing, and then
writes a reply from the tool results and what the gate still needs.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from agent import interview
from agent.answers import (
    LESSON_KINDS,
    AnswerError,
    Reading,
    first_url,
    parse_ci,
    parse_cost,
    parse_evals,
    parse_tracing,
    read_message,
    split_list,
)
from agent.changes import last_change, learner_turns, tool_results
from agent.facts import LOCAL_PATH
from agent.figures import URL_RE, sentence_evidence
from agent.questions import answer_question
from agent.reader import understand
from agent.replies import (
    compose_reply,
    help_text,
    later_step_text,
    not_understood_text,
    offtopic_text,
    pending_text,
    smalltalk_text,
    status_text,
)
from agent.steps import step_tools
from agent.understood import Call, asked_field, is_undo, understood_calls, undo_calls
from seam.model import (
    Block,
    Message,
    ModelRequest,
    ModelResponse,
    is_learner_text,
    text_of,
)
from seam.pricing import Usage

PROJECT_FIELDS = ("title", "problem", "audience", "personal_context", "success_criteria")


def _estimate(text: str) -> int:
    return max(1, len(text) // 4)


class OfflineCoach:
    """The embedded default model: no API key, no network, $0."""

    name = "offline"
    provider = "offline"
    server_address: str | None = None

    def count_tokens(self, request: ModelRequest) -> int | None:
        return None  # estimates only: the offline coach costs nothing to call

    def complete(self, request: ModelRequest) -> ModelResponse:
        blocks = self.decide(request.messages, request.records,
                             str(request.metadata.get("thread_id") or ""))
        prompt = json.dumps([request.system, request.messages, request.tools], default=str)
        usage = Usage(input_tokens=_estimate(prompt),
                      output_tokens=_estimate(json.dumps(blocks)))
        stop = "tool_use" if any(b["type"] == "tool_use" for b in blocks) else "end_turn"
        digest = hashlib.sha1(prompt.encode()).hexdigest()[:20]
        response = ModelResponse(content=blocks, stop_reason=stop, usage=usage,
                                 model=self.name, id=f"msg_offline_{digest}", estimated=True)
        if request.on_text and response.text():
            request.on_text(response.text())
        return response

    # -- the policy -------------------------------------------------------------------

    def decide(self, messages: list[Message], ctx: dict[str, Any],
               thread: str = "") -> list[Block]:
        turn = current_turn(messages)
        learner = text_of(turn[0]) if turn else ""
        results = results_of(turn)
        calls = [b for m in turn if m["role"] == "assistant" for b in m["content"]
                 if b.get("type") == "tool_use"]
        # Step 5's interview (agent/interview.py): the draft's questions, asked in the chat.
        step5 = interview.turn(learner, calls, results, ctx)
        if isinstance(step5, str):
            return [{"type": "text", "text": step5}]
        if step5:
            return [tool_use(messages, len(calls) + i, name, args, thread)
                    for i, (name, args) in enumerate(step5)]
        if not calls:
            greeted = any(m["role"] == "assistant" for m in messages)
            planned = self.plan(learner, ctx, greeted=greeted, messages=messages)
            if isinstance(planned, str):
                return [{"type": "text", "text": planned}]
            return [tool_use(messages, i, name, args, thread)
                    for i, (name, args) in enumerate(planned)]
        follow_up = self.follow_up(calls, results, ctx)
        if follow_up:
            return [tool_use(messages, len(calls) + i, name, args, thread)
                    for i, (name, args) in enumerate(follow_up)]
        undo = bool(turn) and is_undo(learner)
        return [{"type": "text", "text": compose_reply(calls, results, ctx, undo=undo)}]

    def follow_up(self, calls: list[Block], results: dict[str, dict[str, Any]],
                  ctx: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        """After storing things: ask the gate, once, if nothing looks missing."""
        names = [c["name"] for c in calls]
        if "advance_step" in names:
            return []
        for call in calls:
            if call["name"] == "start_next_project" and results[call["id"]].get("ok"):
                return [("advance_step", {"project_id": call["input"]["from_project_id"]})]
        project = ctx.get("project")
        stored = any(r.get("ok") for r in results.values())
        if project and stored and project["step"] != "done" and not project["gate"]["missing"]:
            return [("advance_step", {"project_id": project["id"]})]
        return []

    def plan(self, text: str, ctx: dict[str, Any], greeted: bool = True,
             messages: list[Message] | None = None) -> list[Call] | str:
        """The tool calls a learner's message asks for, or a direct reply."""
        project = ctx.get("project")
        history = messages or []
        step = project["step"] if project else None
        last = last_change(history, is_undo, project["id"]) if project else None
        # "no, I meant …" corrects what was stored just before it; later on it is ambiguous.
        recent = last is not None and last.turn == learner_turns(history) - 1
        last_field = next(iter(last.fields()[::-1]), None) if last and recent else None
        u = understand(text, step, asked_field(project), last_field)
        if u.act == "command" and u.command:
            return self.command(u.command, ctx)
        if u.labelled:
            return self.labelled(read_message(text), ctx)
        if u.act == "undo":
            return undo_calls(last, project)
        if u.act == "question":
            return answer_question(text, ctx)
        if u.act == "offtopic":
            # An off-topic question gets the playbook's honest "not covered" and its closest
            # entries; an off-topic remark, a nudge back to the project.
            return answer_question(text, ctx) if text.rstrip().endswith("?") else \
                offtopic_text(ctx)
        if u.act == "smalltalk":
            return smalltalk_text(ctx, greeted=greeted)
        if not u.facts:
            return u.clarify or not_understood_text(ctx)
        if project is None:
            return self.first_plain_project(u.facts, history)
        return self.understood(u.facts, project)

    def labelled(self, reading: Reading, ctx: dict[str, Any]) -> list[Call] | str:
        """`Title: … Problem: …`: the labelled path, exactly as it has always read."""
        project = ctx.get("project")
        extra = split_repo(reading, project["step"] if project else None)
        try:
            if project is None:
                return self.first_project(reading)
            planned = self.answers(reading, project)
        except AnswerError as exc:
            return str(exc)
        if extra and isinstance(planned, list):
            allowed = step_tools(project["step"])
            planned += [c for c in understood_calls(extra, project) if c[0] in allowed]
        return planned

    def first_plain_project(self, facts: dict[str, Any], history: list[Message]
                            ) -> list[Call] | str:
        # Facts told before there was a project ("I was a nurse for 8 years") are kept
        # for the project's creation, not dropped.
        earlier: dict[str, Any] = {}
        for m in since_last_tool_call(history[:-1]):
            if is_learner_text(m):
                earlier.update(understand(text_of(m), None, None).facts)
        merged = {**earlier, **facts}
        args: dict[str, Any] = {k: merged[k] for k in (*PROJECT_FIELDS, "capabilities")
                                if k in merged}
        if "title" not in args:
            if "problem" not in args:
                return pending_text(merged)
            args["title"] = " ".join(args["problem"].split()[:6]).rstrip(",.;:")
        return [("create_project", args)]

    def understood(self, facts: dict[str, Any], project: dict[str, Any]) -> list[Call] | str:
        calls = understood_calls(facts, project)
        allowed = step_tools(project["step"])
        now = [c for c in calls if c[0] in allowed]
        if calls and not now:
            return later_step_text(calls[0][0], project)
        return now or not_understood_text({"project": project})

    def command(self, command: str, ctx: dict[str, Any]) -> list[tuple[str, dict[str, Any]]] | str:
        project = ctx.get("project")
        if command == "portfolio":
            return [("get_portfolio", {})]
        if command == "next" and project:
            return [("advance_step", {"project_id": project["id"]})]
        if command == "draft" and project:
            return [("draft_postmortem", {"project_id": project["id"]})]
        if command == "help":
            return help_text(ctx)
        return status_text(ctx, recorded=True)

    def first_project(self, reading: Reading) -> list[tuple[str, dict[str, Any]]] | str:
        args: dict[str, Any] = {k: reading.answers[k] for k in PROJECT_FIELDS
                                if k in reading.answers}
        if "capabilities" in reading.answers:
            args["capabilities"] = split_list(reading.answers["capabilities"])
        if "title" not in args:
            if "problem" not in args:
                return ("Let's start with a project. "
                        "What problem do you want to solve? Give it a short title "
                        "(`Title: …`), or tell me everything at once with labels.")
            # Keep every answer: a provisional title from the problem's first words.
            args["title"] = " ".join(args["problem"].split()[:6]).rstrip(",.;:")
        return [("create_project", args)]

    def answers(self, reading: Reading, project: dict[str, Any]
                ) -> list[tuple[str, dict[str, Any]]] | str:
        a, pid, step = reading.answers, project["id"], project["step"]
        if step == "repeat" and "title" in a:
            return self.next_project(a, pid)
        calls = fact_calls(a, pid, step) + evidence_calls(a, pid)
        allowed = step_tools(step)
        now = [c for c in calls if c[0] in allowed]
        if calls and not now:
            return later_step_text(calls[0][0], project)
        return now or help_text({"project": project})

    def next_project(self, a: dict[str, str], pid: int) -> list[tuple[str, dict[str, Any]]] | str:
        if "capabilities" not in a:
            return ("To start the next project I need its capabilities too, so I can check "
                    "that it is harder than this one: send `Title: … Capabilities: a, b, c` "
                    "together.")
        args: dict[str, Any] = {k: a[k] for k in PROJECT_FIELDS if k in a}
        args["capabilities"] = split_list(a["capabilities"])
        return [("start_next_project", {"from_project_id": pid, **args})]


def fact_calls(a: dict[str, str], pid: int, step: str) -> list[Call]:
    """Facts about the project itself: its fields, its repository."""
    calls: list[Call] = []
    fields: dict[str, Any] = {k: a[k] for k in (*PROJECT_FIELDS, "usage_note") if k in a}
    for key in ("mvp_scope", "capabilities"):
        if key in a:
            fields[key] = split_list(a[key])
    if fields:
        calls.append(("update_project", {"project_id": pid, **fields}))
    if "repo" in a:
        # On its own, so that a repository the gate refuses loses none of the other facts.
        calls.append(("update_project", {"project_id": pid, "repo": a["repo"]}))
        if "://" not in a["repo"] and step in ("build", "harden"):
            calls.append(("audit_repository", {"project_id": pid, "path": a["repo"]}))
    if "audit" in a:
        calls.append(("audit_repository", {"project_id": pid, "path": a["audit"]}))
    return calls


EVIDENCE_PARSERS = {"evals": parse_evals, "ci_gate": parse_ci,
                    "observability": parse_tracing, "cost_tracking": parse_cost}


def evidence_calls(a: dict[str, str], pid: int) -> list[Call]:
    """Evidence, lessons, confirmations and the post-mortem."""
    calls: list[Call] = []
    if "url" in a:
        calls.append(("check_deployment",
                      {"project_id": pid, "url": first_url(a["url"]) or a["url"]}))
    for kind, parse in EVIDENCE_PARSERS.items():
        if kind in a:
            calls.append(("record_evidence",
                          {"project_id": pid, "kind": kind, "details": labelled(kind, a[kind],
                                                                                parse)}))
    for kind in LESSON_KINDS:
        for lesson in filter(None, a.get(kind, "").split("\n")):
            calls.append(("record_lesson", {"project_id": pid, "kind": kind,
                                             "text": lesson.strip()}))
    if "confirm" in a:
        calls.append(("record_evidence", {"project_id": pid, "kind": "other",
                                          "details": {"confirmed": a["confirm"]}}))
    if "acknowledge" in a:  # step 4 on the learner's word when the repo cannot be audited
        calls.append(("record_evidence", {"project_id": pid, "kind": "other",
                                          "details": {"acknowledged": a["acknowledge"]}}))
    if "postmortem" in a:
        calls.append(("submit_postmortem", {"project_id": pid, "text": a["postmortem"]}))
    return calls


def labelled(kind: str, value: str, parse: Any) -> dict[str, Any]:
    """A labelled value as it has always been read; one the strict form cannot read gets a
    second reading as a sentence ("Evals: 100 replayed incidents, 93 pass, llm judge")."""
    try:
        details: dict[str, Any] = parse(value)
        return details
    except AnswerError:
        found = sentence_evidence(kind, value)
        if found is None:
            raise
        return found


def since_last_tool_call(messages: list[Message]) -> list[Message]:
    """The messages after the coach last called a tool: the ones no project has stored yet."""
    for i in range(len(messages) - 1, -1, -1):
        m = messages[i]
        if m["role"] == "assistant" and isinstance(m["content"], list) and any(
                b.get("type") == "tool_use" for b in m["content"]):
            return messages[i + 1:]
    return messages


def split_repo(reading: Reading, step: str | None) -> dict[str, Any]:
    """`Repo: ~/code/x and the features are a, b`: the path is one word; the rest of the
    sentence is read for its own facts instead of being swallowed into the path."""
    repo = reading.answers.get("repo", "")
    token, _, rest = repo.strip().partition(" ")
    if not rest.strip() or not (LOCAL_PATH.fullmatch(token.rstrip(".,;")) or URL_RE.fullmatch(
            token.rstrip(".,;"))):
        return {}
    facts = {k: v for k, v in understand(rest, step, None).facts.items() if k != "repo"}
    if facts:  # otherwise it may be a folder whose name has spaces: keep it whole
        reading.answers["repo"] = token.rstrip(".,;")
    return facts


def current_turn(messages: list[Message]) -> list[Message]:
    """The messages since the learner's latest text message."""
    for i in range(len(messages) - 1, -1, -1):
        m = messages[i]
        if is_learner_text(m) and text_of(m).strip():
            return messages[i:]
    return []


def results_of(turn: list[Message]) -> dict[str, dict[str, Any]]:
    """This turn's tool results as `{"ok": …, **result}` (the result's own `ok` wins, as the
    gate's does)."""
    return {use_id: {"ok": ok, **body} for use_id, (ok, body) in tool_results(turn).items()}


def tool_use(messages: list[Message], index: int, name: str, args: dict[str, Any],
             thread: str = "") -> Block:
    # Unique within a conversation, yet the same for the same history (replayable evals, and
    # a killed turn sent again is answered from its recorded calls: tools/effects.py). The
    # thread is in the seed: two threads opening with the same words make different calls.
    history = json.dumps(messages[-4:], sort_keys=True, default=str)
    seed = f"{thread}:{len(messages)}:{history}:{index}:{name}"
    digest = hashlib.sha1(seed.encode()).hexdigest()[:22]
    return {"type": "tool_use", "id": f"toolu_{digest}", "name": name, "input": args}
