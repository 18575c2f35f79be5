"""Facts stay consistent after a gate passed: an edit to a field that an earlier gate
checked is held against that gate again, so nothing silently weakens a passed step.

A change that would fail is refused with the reason; if the learner insists, it is
recorded and the project is marked as needing that step re-checked (a `recheck` record,
which the current gate then lists until the facts pass again).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from memory.models import Evidence, Project
from tools.gates import DONE, GATES, STEPS, ProjectRecord, Requirement

# The project fields each gate checks; evidence-based gates re-check themselves.
GATE_FIELDS: dict[str, tuple[str, ...]] = {
    "problem": ("title", "problem", "audience", "personal_context", "success_criteria"),
    "build": ("repo", "mvp_scope", "usage_note"),
}


def passed_steps(step: str) -> list[str]:
    """The steps whose gates this project has passed."""
    return list(STEPS) if step == DONE else list(STEPS[:STEPS.index(step)])


def weakening(rec: ProjectRecord, changes: dict[str, Any]) -> list[tuple[str, Requirement]]:
    """(step, requirement) for each passed gate the changed fields would now fail."""
    found: list[tuple[str, Requirement]] = []
    for step in passed_steps(rec.project.step):
        touched = [f for f in GATE_FIELDS.get(step, ()) if f in changes]
        if not touched:
            continue
        trial = Project(**{**rec.project.model_dump(), **{f: changes[f] for f in touched}})
        result = GATES[step](replace(rec, project=trial))
        found += [(step, m) for m in result.missing if m.field in touched]
    return found


def refusal(found: list[tuple[str, Requirement]]) -> str:
    reasons = "; ".join(f"the {step} gate this project passed needs {m.message}"
                        for step, m in found)
    return (f"not changed: {reasons}. Give a value that still passes, or, if you mean it, "
            "ask again with insist=true: the change is then recorded and the step marked "
            "as needing a re-check")


def recheck_record(project_id: int, found: list[tuple[str, Requirement]]) -> Evidence:
    return Evidence(project_id=project_id, kind="recheck", ok=False, verified=True, details={
        "steps": sorted({step for step, _ in found}, key=STEPS.index),
        "fields": sorted({m.field for _, m in found}),
        "reasons": [f"{step}: {m.message}" for step, m in found]})


def still_failing(rec: ProjectRecord) -> list[str]:
    """The reasons of an open re-check whose facts still fail their gates."""
    mark = rec.latest("recheck")
    if mark is None or mark.ok:
        return []
    fields = {f: getattr(rec.project, f) for f in mark.details.get("fields", [])}
    return [f"{step}: {m.message}" for step, m in weakening(rec, fields)]


def recheck_requirements(rec: ProjectRecord) -> list[Requirement]:
    """What the current gate must also show while a passed step needs re-checking."""
    return [Requirement("recheck", f"step {reason} (changed after that step passed)")
            for reason in still_failing(rec)]


def resolved_record(rec: ProjectRecord) -> Evidence | None:
    """A record closing an open re-check once the facts pass their gates again."""
    mark = rec.latest("recheck")
    if mark is None or mark.ok or still_failing(rec):
        return None
    assert rec.project.id is not None
    return Evidence(project_id=rec.project.id, kind="recheck", ok=True, verified=True,
                    details={**mark.details, "resolved": True})
