"""From understood facts to the tool calls that store them, and undo's reverting call."""

from __future__ import annotations

from typing import Any

from agent.changes import Change
from agent.reader import understand

Call = tuple[str, dict[str, Any]]
PROJECT_FIELDS = ("title", "problem", "audience", "personal_context", "success_criteria")
EVIDENCE_KINDS = ("evals", "ci_gate", "observability", "cost_tracking")
LESSON_KINDS = ("worked", "didnt_work", "tradeoff", "decision")
# Bookkeeping the store adds to evidence, which a new record must not carry over.
# What the store and the coach add to a record (its view's strength and sentence, how the
# coach checked it): never carried into a new record the learner states.
STORE_KEYS = ("verified", "ok", "checked_at", "strength", "summary", "how", "link_check")


def asked_field(project: dict[str, Any] | None) -> str | None:
    """The field the coach's last reply asked for: the gate's first missing requirement."""
    if project is None:
        return None
    missing = project["gate"]["missing"]
    if not missing:
        return None
    name: str = missing[0]["field"]
    return {"next_project": "title"}.get(name, name)


def is_undo(text: str) -> bool:
    return understand(text, "problem", None).act == "undo"


def undo_calls(change: Change | None, project: dict[str, Any] | None) -> list[Call] | str:
    if project is None or change is None:
        return "There's nothing of yours I stored recently to undo."
    if change.tool in ("record_evidence", "check_deployment"):
        return ("I can't delete recorded evidence, but the newest record of each kind is the "
                "one that counts: send the right figures and they replace it.")
    if change.tool == "record_lesson":
        return ("I can't delete a lesson once it's noted, but your post-mortem decides what "
                "goes in: send a corrected one and both stay as notes.")
    if change.tool != "update_project":
        return ("I can't undo starting a project, but I can change anything in it: say "
                "`call it …` to rename it, or tell me the right value for any field.")
    args, stuck = change.revert_args()
    if not args:
        names = ", ".join(s.replace("_", " ") for s in stuck)
        return (f"I can't see what the {names} was before that change, so I can't put it "
                "back; tell me the right value and I'll replace it.")
    return [("update_project", {"project_id": project["id"], **args})]


def _evidence(kind: str, details: dict[str, Any], project: dict[str, Any]) -> dict[str, Any]:
    # The newest record of a kind is the one the gate reads: a partial answer ("10 of them
    # pass") completes the earlier one instead of replacing it.
    if kind != "evals":
        return details
    earlier = {k: v for k, v in (project.get("evidence") or {}).get(kind, {}).items()
               if k not in STORE_KEYS}
    return {**earlier, **details}


def understood_calls(facts: dict[str, Any], project: dict[str, Any]) -> list[Call]:
    pid, step = project["id"], project["step"]
    if step == "repeat" and "title" in facts:
        caps = facts.get("capabilities")
        if not caps:
            return []
        args = {k: facts[k] for k in PROJECT_FIELDS if k in facts}
        return [("start_next_project", {"from_project_id": pid, **args, "capabilities": caps})]
    calls: list[Call] = []
    fields: dict[str, Any] = {k: facts[k] for k in (*PROJECT_FIELDS, "usage_note", "mvp_scope")
                              if k in facts}
    if "capabilities" in facts:
        merged = list(dict.fromkeys([*(project.get("capabilities") or []),
                                     *facts["capabilities"]]))
        if merged != project.get("capabilities"):
            fields["capabilities"] = merged
    if fields:
        calls.append(("update_project", {"project_id": pid, **fields}))
    if "repo" in facts:
        calls.append(("update_project", {"project_id": pid, "repo": facts["repo"]}))
        if "://" not in facts["repo"] and step in ("build", "harden"):
            calls.append(("audit_repository", {"project_id": pid, "path": facts["repo"]}))
    if "url" in facts:
        calls.append(("check_deployment", {"project_id": pid, "url": facts["url"]}))
    for kind in EVIDENCE_KINDS:
        if kind in facts:
            calls.append(("record_evidence", {"project_id": pid, "kind": kind,
                                              "details": _evidence(kind, facts[kind], project)}))
    for kind in LESSON_KINDS:
        for text in facts.get(kind, []):
            calls.append(("record_lesson", {"project_id": pid, "kind": kind, "text": text}))
    if "postmortem" in facts:
        calls.append(("submit_postmortem", {"project_id": pid, "text": facts["postmortem"]}))
    return calls
