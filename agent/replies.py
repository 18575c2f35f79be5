"""The offline coach's words: what it did this turn, what the gate needs, what's next."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agent.steps import GUIDES, QUESTIONS
from memory.vocabulary import LessonKind
from seam.model import Block

KIND_NAMES: dict[LessonKind, str] = {"worked": "what worked", "didnt_work": "what didn't work",
                                     "tradeoff": "a tradeoff", "decision": "a decision"}


def _error(result: dict[str, Any]) -> str:
    problems = result.get("problems")
    detail = f" ({'; '.join(problems)})" if problems else ""
    return f"{result.get('error', 'that failed')}{detail}"


def _evidence_line(kind: str, d: dict[str, Any]) -> str:
    if kind == "evals":
        rate = d.get("pass_rate")
        rate_text = f", {rate:.0%} pass" if isinstance(rate, int | float) else ""
        return f"evals: {d.get('cases')} cases{rate_text}, graded by {d.get('grader') or '?'}"
    if kind == "ci_gate":
        return f"CI gate: {d.get('provider')}"
    if kind == "observability":
        return f"tracing: {d.get('tool')}" + (f" ({d['link']})" if d.get("link") else "")
    if kind == "cost_tracking":
        return f"cost: ${d.get('cost_usd')} per {d.get('per')}"
    return kind


def _deployment_line(r: dict[str, Any]) -> str:
    if r.get("ok"):
        line = (f"I fetched {r.get('final_url') or r.get('url')}: HTTP {r.get('status_code')} in "
                f"{r.get('latency_ms')} ms.")
    else:
        line = f"The deployment check of {r.get('url')} failed: {r.get('reason')}."
    for warning in r.get("warnings") or []:
        line += f" Warning: {warning}"
    return line


def _audit_line(r: dict[str, Any]) -> str:
    findings = r.get("findings") or []
    return "Audited the repository: " + ("; ".join(findings) if findings else "nothing found")


def _created(args: dict[str, Any], r: dict[str, Any]) -> str:
    return f"Started project #{r['project_id']}, “{args.get('title')}”."


def _updated(_args: dict[str, Any], r: dict[str, Any]) -> str:
    return "Saved " + ", ".join(f.replace("_", " ") for f in r["updated"]) + "."


def _deployment(_args: dict[str, Any], r: dict[str, Any]) -> str:
    if "error" in r:
        return f"I couldn't check the deployment: {_error(r)}."
    return _deployment_line(r)


def _submitted(_args: dict[str, Any], r: dict[str, Any]) -> str:
    verdict = "it passes the checks" if r.get("passed_checks") else \
        "still needed: " + "; ".join(r.get("failed", []))
    return f"Saved post-mortem version {r['version']} ({r['words']} words): {verdict}."


def _drafted(_args: dict[str, Any], r: dict[str, Any]) -> str:
    grounding = r["grounding"]
    verdict = "every figure is backed by your evidence" if grounding["grounded"] else \
        f"{len(grounding['unsupported'])} figure(s) need evidence"
    return (f"Drafted post-mortem version {r['version']}: {r['words']} words "
            f"(target {r['target_words']:,}); {verdict}. Fill in the [TODO]s, then "
            "send it back with `Post-mortem: @file.md`. (`coach postmortem draft "
            f"{r['project_id']} --out file.md` writes it to a file.)\n\n---\n\n" + r["text"])


def _next_started(_args: dict[str, Any], r: dict[str, Any]) -> str:
    return (f"Started your next project #{r['project_id']} at difficulty "
            f"{r['difficulty']} (up from {r['previous']['difficulty']}).")


Describer = Callable[[dict[str, Any], dict[str, Any]], str]
# One sentence per tool about a call's outcome: (the call's input, its result) -> words.
DESCRIBERS: dict[str, Describer] = {
    "create_project": _created,
    "update_project": _updated,
    "check_deployment": _deployment,
    "record_evidence": lambda _a, r: f"Recorded {_evidence_line(r['kind'], r['details'])}.",
    "record_lesson": lambda _a, r: f"Noted {KIND_NAMES[r['kind']]} for your post-mortem.",
    "audit_repository": lambda _a, r: _audit_line(r),
    "submit_postmortem": _submitted,
    "draft_postmortem": _drafted,
    "start_next_project": _next_started,
    "get_portfolio": lambda _a, r: portfolio_text(r),
}
# A failed deployment check is a finding to report, not a failed call.
REPORTS_FAILURE = {"check_deployment"}


def describe(call: Block, result: dict[str, Any]) -> str | None:
    """One sentence about one tool call's outcome."""
    name, args = call["name"], call["input"]
    if not result.get("ok") and name not in REPORTS_FAILURE:
        return f"I couldn't {name.replace('_', ' ')}: {_error(result)}."
    describer = DESCRIBERS.get(name)
    return describer(args, result) if describer else None


def portfolio_text(result: dict[str, Any]) -> str:
    projects = result.get("projects", [])
    if not projects:
        return "Your portfolio is empty so far."
    lines = [f"Your portfolio ({result['done']} done: {result['readiness']}):"]
    for p in projects:
        lines.append(f"- #{p['id']} {p['title']}: step {p['step']}, difficulty {p['difficulty']}")
    return "\n".join(lines)


def gate_text(project: dict[str, Any]) -> str:
    gate = project["gate"]
    guide = GUIDES[project["step"]]
    if not gate["missing"]:
        return f"Everything for step {guide.number} ({guide.name.lower()}) is in place."
    needs = "\n".join(f"- {m['message']}" for m in gate["missing"])
    return f"Still needed for the {project['step']} gate:\n{needs}"


def next_question(project: dict[str, Any]) -> str:
    missing = project["gate"]["missing"]
    if not missing:
        return "Say `next` and I'll check the gate."
    return QUESTIONS.get(missing[0]["field"], "")


def compose_reply(calls: list[Block], results: dict[str, dict[str, Any]],
                  ctx: dict[str, Any]) -> str:
    lines = [s for c in calls if c["name"] != "advance_step"
             if (s := describe(c, results.get(c["id"], {"ok": False}))) is not None]
    project = ctx.get("project")
    advanced = False
    for call in calls:
        result = results.get(call["id"], {})
        if call["name"] != "advance_step":
            continue
        if result.get("ok"):
            advanced = True
            lines.append(f"Gate passed: {result['from_step']} → {result['step']}.")
            lines += [f"Note: {w}" for w in result.get("warnings", [])]
        elif "error" in result:
            lines.append(f"I couldn't check the gate: {_error(result)}.")
        elif result.get("missing"):
            lines.append(f"Not yet: the {result['step']} gate doesn't pass.")
        elif result.get("step") == "done":
            lines.append("This project is already done.")
    if project is None:
        return "\n".join(lines) or "Tell me about a problem you'd like to solve."
    if project["step"] == "done":
        lines.append("This project is done: it counts toward your portfolio.")
        return "\n".join(lines)
    if advanced:
        guide = GUIDES[project["step"]]
        lines.append(f"Step {guide.number}/6: {guide.name}. {guide.why}")
    lines.append(gate_text(project))
    lines.append(next_question(project))
    return "\n\n".join(x for x in lines if x)


def later_step_text(tool: str, project: dict[str, Any]) -> str:
    """The learner jumped ahead: say where that belongs and what comes first."""
    later = next((g for g in GUIDES.values() if tool in g.tools), None)
    where = f"step {later.number} ({later.name.lower()})" if later else "a later step"
    return (f"That belongs to {where}; we'll get there once the current gate passes. Evidence "
            "counts when the steps before it are done.\n\n" + status_text({"project": project}))


def status_text(ctx: dict[str, Any]) -> str:
    project = ctx.get("project")
    if project is None:
        return ("You have no active project. What problem do you want to solve? "
                "Give it a short title (`Title: …`).")
    guide = GUIDES[project["step"]]
    head = (f"Project #{project['id']} “{project['title']}” is at step {guide.number}/6: "
            f"{guide.name} (difficulty {project['difficulty']}).")
    if project["step"] == "done":
        return head
    return "\n\n".join([head, gate_text(project), next_question(project)])


WELCOME = ("I'm your portfolio coach. AI engineers get hired on three to five deployed "
           "projects, and we take each one through six steps: pick a problem you know from "
           "the inside, build the smallest useful tool, deploy it at a real URL, add evals, "
           "tracing and cost tracking, write a post-mortem, then start a harder one. I check "
           "real evidence at every step before we move on.")


def help_text(ctx: dict[str, Any], question: str | None = None) -> str:
    project = ctx.get("project")
    intro = ""
    if question:
        intro = ("Good question. I'm the offline coach, so I can't answer free-form questions; "
                 "here is where you stand and what helps next.\n\n")
    commands = ("Commands: `status`, `portfolio`, `next` (check the gate), "
                "`draft post-mortem`, `help`. You can answer with labels in any order, e.g. "
                "`Title: … Problem: … Audience: … Why me: … Success: …`.")
    if project is None:
        return intro + "\n\n".join([WELCOME, status_text(ctx), commands])
    guide = GUIDES[project["step"]]
    why = f"Why step {guide.number} matters: {guide.why}" if project["step"] != "done" else ""
    return intro + "\n\n".join(x for x in [status_text(ctx), why, commands] if x)
