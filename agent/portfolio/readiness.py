"""How close the learner's portfolio is to what gets interviews, read from the records:
the bar (3 done projects = ready to apply, 5 = strong), rising difficulty, the four
pillars, the guide's common mistakes, and the one capability the next project should add.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from sqlmodel import Session, col, select

from memory.models import DeploymentRecheck, Evidence, Lesson, Project, ProjectUsage
from memory.vocabulary import DONE

READY, STRONG = 3, 5
# After the pillars, the capabilities that most widen what a portfolio shows, in order.
LATER = ("tool_use", "structured_output", "agents", "streaming", "multi_user", "scale",
         "multimodal", "fine_tuning")


def _t(e: Any) -> Any:
    at = getattr(e, "checked_at", None) or getattr(e, "created_at", None)
    if at is None:
        return None
    return at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo is not None else at


def _pillar(covered: bool, detail: str, **extra: Any) -> dict[str, Any]:
    return {"covered": covered, "detail": detail, **extra}


def report(s: Session, user_id: int) -> dict[str, Any]:
    projects = list(s.exec(select(Project).where(Project.user_id == user_id)
                           .order_by(col(Project.id))).all())
    ids = [p.id for p in projects]
    evidence = list(s.exec(select(Evidence).where(col(Evidence.project_id).in_(ids))).all()) \
        if ids else []
    lessons = list(s.exec(select(Lesson).where(col(Lesson.project_id).in_(ids))).all()) \
        if ids else []
    rechecks = list(s.exec(select(DeploymentRecheck)
                           .where(col(DeploymentRecheck.project_id).in_(ids))).all()) \
        if ids else []
    models = sorted(set(s.exec(select(ProjectUsage.model)
                               .where(col(ProjectUsage.project_id).in_(ids))).all())) \
        if ids else []

    def of(pid: int | None, kind: str) -> list[Evidence]:
        return [e for e in evidence if e.project_id == pid and e.kind == kind]

    deployed = [p for p in projects if any(e.ok for e in of(p.id, "deployment"))]
    done = sum(p.step == DONE for p in projects)
    label = "strong" if done >= STRONG else "ready to apply" if done >= READY else "building"

    sequence = [{"id": p.id, "title": p.title, "difficulty": p.difficulty} for p in projects]
    flat = [[a.id, b.id] for a, b in zip(projects, projects[1:], strict=False)
            if b.difficulty <= a.difficulty]

    ci_deployed = [p for p in deployed if of(p.id, "ci_gate")]
    retrieval = [p for p in projects if "retrieval" in p.capabilities]
    retrieval_evals = [p for p in retrieval if of(p.id, "evals")]
    verified_evals = [p for p in projects
                      if any(e.verified for e in of(p.id, "evals")) and of(p.id, "ci_gate")]
    stated_evals = [p for p in projects if of(p.id, "evals") and of(p.id, "ci_gate")]
    pillars = {
        "software_engineering": _pillar(
            bool(ci_deployed),
            f"{len(ci_deployed)} project(s) deployed at a checked URL with a CI gate"
            if ci_deployed else "no project is both deployed at a checked URL and CI-gated",
            projects=[p.id for p in ci_deployed]),
        "llm_intuition": _pillar(
            bool(deployed) and bool(models),
            f"{len(deployed)} shipped project(s); models used: "
            f"{', '.join(models) or 'none recorded'}",
            shipped=len(deployed), models=models),
        "retrieval": _pillar(
            bool(retrieval_evals),
            "a retrieval project with evals" if retrieval_evals else
            "a retrieval project without evals yet" if retrieval else "no retrieval project yet",
            projects=[p.id for p in retrieval_evals]),
        "evaluation": _pillar(
            bool(verified_evals),
            "evals the coach verified, behind a CI gate" if verified_evals else
            "evals and a CI gate are stated, not yet verified by the coach" if stated_evals
            else "no evals behind a CI gate yet", projects=[p.id for p in verified_evals]),
    }

    mistakes: list[dict[str, Any]] = []
    no_evals = [p.id for p in deployed if not of(p.id, "evals")]
    if no_evals:
        mistakes.append({"id": "no_evals", "projects": no_evals,
                         "message": "shipped without evals: a hiring manager asks how you "
                                    "know it works"})
    tuned = [p for p in projects if "fine_tuning" in p.capabilities]
    if tuned and (not retrieval or (tuned[0].id or 0) < (retrieval[0].id or 0)):
        mistakes.append({"id": "fine_tuning_before_retrieval", "projects": [tuned[0].id],
                         "message": "fine-tuning came before any retrieval project: retrieval "
                                    "is cheaper, and what most roles need first"})
    demo = sorted({e.project_id for e in evidence
                   if e.kind == "deployment" and (e.details.get("streamlit")
                                                  or e.details.get("streamlit_cloud"))})
    if demo:
        mistakes.append({"id": "demo_host", "projects": demo,
                         "message": "a demo host (Streamlit) instead of a real deployment"})
    late = []
    for p in projects:
        evals = sorted(_t(e) for e in of(p.id, "evals"))
        shipped = sorted(_t(e) for e in of(p.id, "deployment") if e.ok)
        broke = sorted([_t(e) for e in of(p.id, "deployment") if not e.ok]
                       + [_t(r) for r in rechecks if r.project_id == p.id and not r.ok]
                       + [_t(lesson) for lesson in lessons
                          if lesson.project_id == p.id and lesson.kind == "didnt_work"])
        if evals and shipped and broke and shipped[0] < broke[0] < evals[0]:
            late.append(p.id)
    if late:
        mistakes.append({"id": "evals_after_breakage", "projects": late,
                         "message": "evals were added only after something broke: write "
                                    "them before shipping"})

    return {"done": done, "bar": {"ready": READY, "strong": STRONG}, "readiness": label,
            "to_next_bar": (READY if done < READY else STRONG) - done if done < STRONG else 0,
            "difficulty": {"sequence": sequence, "rising": not flat, "not_rising": flat},
            "pillars": pillars, "mistakes": mistakes,
            "next_capability": _next(projects, pillars, evidence)}


def _next(projects: list[Project], pillars: dict[str, Any],
          evidence: list[Evidence]) -> dict[str, Any]:
    used = {c for p in projects for c in p.capabilities}
    top = max((p.difficulty for p in projects), default=0)
    harder = f"; keep what you have and add it, so the next project's difficulty is {top + 1}"
    if not pillars["retrieval"]["covered"]:
        why = ("the retrieval pillar is missing: a project that retrieves from a corpus and "
               "measures retrieval quality with evals")
        return {"capability": "retrieval", "reason": why + harder}
    if not pillars["evaluation"]["covered"]:
        return {"capability": "evals_ci", "reason": "no evals the coach verified behind a CI "
                "gate yet: put the eval set in the repository and make CI run it" + harder}
    if not any(e.kind == "observability" for e in evidence) and "observability" not in used:
        return {"capability": "observability", "reason": "no tracing shown yet: send the "
                "app's traces so cost and latency per request are measured" + harder}
    for capability in LATER:
        if capability not in used:
            return {"capability": capability,
                    "reason": f"you have not shown {capability.replace('_', ' ')} yet" + harder}
    return {"capability": "scale", "reason": "every capability is covered: go deeper on "
            "scale (load, cost per request at volume)" + harder}


def report_lines(r: dict[str, Any]) -> list[str]:
    """The report as plain lines for the terminal."""
    lines = [f"Done projects: {r['done']} (3 = ready to apply, 5 = strong): {r['readiness']}"]
    seq = " → ".join(f"#{p['id']} {p['difficulty']}" for p in r["difficulty"]["sequence"])
    rising = "rising" if r["difficulty"]["rising"] else "NOT rising at " + ", ".join(
        f"#{a}→#{b}" for a, b in r["difficulty"]["not_rising"])
    lines.append(f"Difficulty: {seq or 'no projects'} ({rising})")
    for name, p in r["pillars"].items():
        lines.append(f"[{'x' if p['covered'] else ' '}] {name.replace('_', ' ')}: {p['detail']}")
    for m in r["mistakes"]:
        lines.append(f"Mistake ({m['id']}): {m['message']} — project(s) "
                     + ", ".join(f"#{i}" for i in m["projects"]))
    nxt = r["next_capability"]
    lines.append(f"Next project should add: {nxt['capability']} — {nxt['reason']}")
    return lines
