"""The offline coach's words: what it did this turn, what the gate needs, what's next."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agent.steps import GUIDES, QUESTIONS
from memory.vocabulary import LessonKind
from playbook import answer_question
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
    if kind == "other" and d.get("confirmed"):
        return (f"your confirmation of “{d['confirmed']}”: you now vouch for it, and the "
                "post-mortem's grounding check accepts it as evidence")
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
    rest = [k for k in args if k != "title"]
    saved = f" {saved_text(args, rest)}" if rest else ""
    working = " ".join(str(args.get("problem", "")).split()[:6]).rstrip(",.;:")
    if args.get("title") == working:
        saved += (" Its title is a working title from the problem's first words: say "
                  "`call it …` to give it a real one.")
    return f"Started project #{r['project_id']}, “{args.get('title')}”.{saved}"


def _updated(args: dict[str, Any], r: dict[str, Any]) -> str:
    return saved_text(args, r["updated"])


def _deployment(_args: dict[str, Any], r: dict[str, Any]) -> str:
    if "error" in r:
        return f"I couldn't check the deployment: {_error(r)}."
    return _deployment_line(r)


def _submitted(_args: dict[str, Any], r: dict[str, Any]) -> str:
    verdict = "it passes the checks" if r.get("passed_checks") else \
        "still needed: " + "; ".join(r.get("failed", []))
    return f"Saved post-mortem version {r['version']} ({r['words']:,} words): {verdict}."


def _drafted(_args: dict[str, Any], r: dict[str, Any]) -> str:
    grounding = r["grounding"]
    verdict = "every figure is backed by your evidence" if grounding["grounded"] else \
        f"{len(grounding['unsupported'])} figure(s) need evidence"
    return (f"Drafted post-mortem version {r['version']}: {r['words']:,} words "
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


# What each readiness level means, in the words a learner can act on.
READINESS = {"building": "still building: 3 done projects make you ready to apply",
             "ready to apply": "ready to apply; 5 make a strong portfolio",
             "strong": "a strong portfolio"}


def portfolio_text(result: dict[str, Any]) -> str:
    projects = result.get("projects", [])
    if not projects:
        return "Your portfolio is empty so far."
    done = result["done"]
    lines = [f"Your portfolio: {done} done "
             f"({READINESS.get(result['readiness'], result['readiness'])}):"]
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


def next_question(project: dict[str, Any], capabilities: bool = True) -> str:
    missing = project["gate"]["missing"]
    if not missing:
        return "Say `next` and I'll check the gate."
    question = QUESTIONS.get(missing[0]["field"], "")
    if capabilities and project["step"] == "problem" and not project.get("capabilities"):
        # Difficulty is counted in capabilities: ask while the problem is being shaped.
        question += "\n\nAlso: " + CAPABILITY_QUESTION
    return question


def compose_reply(calls: list[Block], results: dict[str, dict[str, Any]],
                  ctx: dict[str, Any], undo: bool = False) -> str:
    lines = [s for c in calls if c["name"] != "advance_step"
             if (s := describe(c, results.get(c["id"], {"ok": False}))) is not None]
    if undo:
        lines = [undone_text(c["input"]) if c["name"] == "update_project"
                 and results.get(c["id"], {}).get("ok") else line
                 for c, line in zip([c for c in calls if c["name"] != "advance_step"], lines,
                                    strict=False)]
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
        if project["step"] == "build" and not project.get("capabilities"):
            lines.append("Note: no capabilities yet, so this project's difficulty is 0. "
                         + CAPABILITY_QUESTION)
    lines.append(gate_text(project))
    lines.append(next_question(project))
    return "\n\n".join(x for x in lines if x)


def later_step_text(tool: str, project: dict[str, Any]) -> str:
    """The learner jumped ahead: say where that belongs and what comes first."""
    later = next((g for g in GUIDES.values() if tool in g.tools), None)
    where = f"step {later.number} ({later.name.lower()})" if later else "a later step"
    return (f"That belongs to {where}; we'll get there once the current gate passes. Evidence "
            "counts when the steps before it are done.\n\n" + status_text({"project": project}))


def status_text(ctx: dict[str, Any], recorded: bool = False) -> str:
    project = ctx.get("project")
    if project is None:
        return ("You have no active project. What problem do you want to solve? "
                "Give it a short title (`Title: …`).")
    guide = GUIDES[project["step"]]
    head = (f"Project #{project['id']} “{project['title']}” is at step {guide.number}/6: "
            f"{guide.name} (difficulty {project['difficulty']}).")
    if project["step"] == "done":
        return head
    facts = [recorded_text(project)] if recorded else []
    return "\n\n".join([head, *facts, gate_text(project), next_question(project)])


STEP_FIELDS: dict[str, tuple[str, ...]] = {
    "problem": ("title", "problem", "audience", "personal_context", "success_criteria",
                "capabilities"),
    "build": ("repo", "mvp_scope", "usage_note"),
    "repeat": ("title", "capabilities"),
}
STEP_EVIDENCE: dict[str, tuple[str, ...]] = {
    "deploy": ("deployment",), "harden": ("evals", "ci_gate", "observability", "cost_tracking"),
}


def recorded_text(project: dict[str, Any]) -> str:
    """What is stored so far for the current step, so a learner can see every value."""
    step = project["step"]
    lines = [f"- the {FIELD_NAMES.get(f, f.replace('_', ' '))}: {shown(project.get(f))}"
             for f in STEP_FIELDS.get(step, ()) if project.get(f)]
    evidence = project.get("evidence") or {}
    for kind in STEP_EVIDENCE.get(step, ()):
        if kind in evidence:
            d = evidence[kind]
            line = _deployment_line(d) if kind == "deployment" else _evidence_line(kind, d)
            lines.append(f"- {line}")
    if step == "postmortem":
        kinds = [lesson["kind"] for lesson in project.get("lessons") or []]
        lines += [f"- {KIND_NAMES[k]}: {kinds.count(k)} noted"
                  for k in KIND_NAMES if k in kinds]
        lines += [f"- post-mortem version {v['version']} ({v['source']}, {v['words']} words)"
                  for v in project.get("postmortems") or []]
    body = "\n".join(lines) if lines else "- nothing yet"
    return f"Recorded so far for this step (say `undo` to take back the last change):\n{body}"


def recap_text(project: dict[str, Any] | None) -> str:
    """Two lines for a learner coming back to a thread: where the project stands, what's next."""
    if project is None:
        return ("No project on this thread yet.\nTell me about a problem you'd like to solve, "
                "or type `help`.")
    guide = GUIDES[project["step"]]
    head = (f"Welcome back. Project #{project['id']} “{project['title']}” is at step "
            f"{guide.number}/6: {guide.name.lower()}.")
    missing = project["gate"]["missing"]
    if project["step"] == "done":
        return head + "\nIt's done; start your next one, or type `portfolio`."
    needs = "; ".join(m["message"] for m in missing[:3]) if missing else \
        "nothing: say `next` to check the gate"
    return f"{head}\nStill needed: {needs}."


WELCOME = ("I'm your portfolio coach. AI engineers get hired on three to five deployed "
           "projects, and we take each one through six steps: pick a problem you know from "
           "the inside, build the smallest useful tool, deploy it at a real URL, add evals, "
           "tracing and cost tracking, write a post-mortem, then start a harder one. I check "
           "real evidence at every step before we move on.")


def help_text(ctx: dict[str, Any], question: str | None = None) -> str:
    project = ctx.get("project")
    intro = ""
    if question:
        # The playbook answers; the interview then carries on with its current question.
        answer = answer_question(question, project["step"] if project else None,
                                 (project or {}).get("capabilities") or ())
        if answer:
            resume = next_question(project) if project and project["step"] != "done" else ""
            return "\n\n".join(x for x in [answer, resume or status_text(ctx)] if x)
    commands = ("Commands: `status`, `portfolio`, `next` (check the gate), "
                "`draft post-mortem`, `undo`, `help`. Answer in plain sentences, or with "
                f"labels in any order, e.g. `{step_labels(project)}`.")
    if project is None:
        return intro + "\n\n".join([WELCOME, status_text(ctx), commands])
    guide = GUIDES[project["step"]]
    why = f"Why step {guide.number} matters: {guide.why}" if project["step"] != "done" else ""
    return intro + "\n\n".join(x for x in [status_text(ctx), why, commands] if x)


CAPABILITY_QUESTION = ("Which capabilities will it use? In plain words is fine: “it searches my "
                       "notes” (retrieval), “it calls APIs” (tool_use), “JSON output” "
                       "(structured_output), “it streams answers” (streaming), …")
STEP_LABELS: dict[str, str] = {
    "problem": "Title: … Problem: … Audience: … Why me: … Success: … Capabilities: …",
    "build": "Repo: ~/code/my-tool MVP: a; b; c Usage: …",
    "deploy": "URL: https://…",
    "harden": "Evals: 24 cases, 91% pass, graded by exact match CI: … Tracing: … Cost: …",
    "postmortem": "Worked: … Didn't work: … Tradeoff: … Post-mortem: @file.md",
    "repeat": "Title: … Capabilities: a, b, c",
    "done": "Title: … Capabilities: a, b, c",
}
FIELD_NAMES = {"personal_context": "personal context", "success_criteria": "success criterion",
               "mvp_scope": "MVP features", "usage_note": "usage note", "repo": "repository"}
MAX_SHOWN = 80


def step_labels(project: dict[str, Any] | None) -> str:
    """The labels of the step the learner is at (the footer and help show these)."""
    return STEP_LABELS[project["step"] if project else "problem"]


def shown(value: Any) -> str:
    """A stored value, quoted; a long one (a problem statement) by its start and length."""
    text = "; ".join(map(str, value)) if isinstance(value, list) else str(value)
    if len(text) <= MAX_SHOWN:
        return f"“{text}”"
    start = text[:MAX_SHOWN].rsplit(" ", 1)[0].rstrip(",.;:")
    return f"“{start}…” ({len(text.split())} words)"


def saved_text(args: dict[str, Any], names: list[str]) -> str:
    """“Saved the audience: “ward nurses”.”: every stored value, shown back to the learner."""
    parts = [f"the {FIELD_NAMES.get(n, n.replace('_', ' '))}: {shown(args[n])}"
             for n in names if n in args]
    if not parts:
        return "Saved " + ", ".join(n.replace("_", " ") for n in names) + "."
    return "Saved " + "; ".join(parts) + ". (Say `undo` to take it back.)"


def undone_text(args: dict[str, Any]) -> str:
    parts = [f"the {FIELD_NAMES.get(n, n.replace('_', ' '))} is "
             + (f"back to {shown(v)}" if v else "empty again")
             for n, v in args.items() if n != "project_id"]
    return "Undone: " + "; ".join(parts) + "."




def smalltalk_text(ctx: dict[str, Any], greeted: bool) -> str:
    project = ctx.get("project")
    if not greeted:
        return help_text(ctx)
    if project is None:
        return "Hello! " + status_text(ctx)
    return "Got it. " + next_question(project) if project["step"] != "done" else \
        "Got it. " + status_text(ctx)


def offtopic_text(ctx: dict[str, Any]) -> str:
    project = ctx.get("project")
    where = next_question(project) if project and project["step"] != "done" else \
        "What problem do you want to solve?"
    return "That's outside what I can help with: I coach portfolio projects. " + where


def not_understood_text(ctx: dict[str, Any]) -> str:
    project = ctx.get("project")
    if project is None:
        return ("I didn't catch a project in that, so I stored nothing. What problem do you "
                "want to solve? Give it a short title, or tell me what goes wrong today.")
    return ("I didn't find anything to store in that, so I stored nothing. "
            + (next_question(project) if project["step"] != "done" else status_text(ctx)))


def pending_text(facts: dict[str, Any]) -> str:
    kept = "; ".join(f"{FIELD_NAMES.get(k, k.replace('_', ' '))}: {shown(v)}"
                     for k, v in facts.items())
    return (f"Noted ({kept}); I'll store it once we have a project. What problem do you want "
            "to solve? Tell me what goes wrong today, or give the project a short title.")
