"""The offline post-mortem drafter: deterministic Markdown from the evidence bundle.

It writes connected prose around the learner's own facts and words; where a fact is
missing it writes a `[TODO: …]` that says what to add, never an invented figure.
Its fixed sentences contain no digits, so every number in a draft comes from the
evidence (the grounding check holds by construction).
"""

from __future__ import annotations

from typing import Any

SECTIONS = ("TL;DR", "The problem and why me", "What I built", "Deployment", "Evals",
            "Observability and cost", "What worked", "What didn't", "Tradeoffs",
            "What I'd do next", "Appendix: metrics")
TARGET_WORDS = 1500


def _todo(what: str) -> str:
    return f"[TODO: {what}]"


def _join(items: list[str]) -> str:
    items = [i.strip().rstrip(".") for i in items if i.strip()]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _percent(rate: Any) -> str | None:
    if rate is None:
        return None
    value = float(rate)
    return f"{value * 100:g}%" if value <= 1 else f"{value:g}%"


def _quote(text: str) -> str:
    return f"“{text.strip().rstrip('.')}”"


def tldr(b: dict[str, Any]) -> str:
    p = b["project"]
    deployed = next((d for d in reversed(b["deployments"]) if d.get("ok")), None)
    evals = b.get("evals")
    parts = [f"{p['title']} is a small tool for {p['audience'] or _todo('who it is for')}."]
    parts.append(f"The problem it tackles: {p['problem'] or _todo('the problem in a sentence')}")
    if deployed:
        parts.append(f"It runs at {deployed.get('final_url') or deployed['url']}, a URL the "
                     "coach fetched and verified itself rather than taking on trust.")
    else:
        parts.append(_todo("where it is deployed, once a deployment check passes"))
    if evals:
        parts.append(f"Its eval set of {evals.get('cases')} cases passes at "
                     f"{_percent(evals.get('pass_rate')) or _todo('the pass rate')}, graded by "
                     f"{evals.get('grader') or _todo('the grading method')}.")
    parts.append("This post-mortem walks through what I set out to do, what I shipped, how I "
                 "know whether it works, and what I would change, so a reader can judge the "
                 "decisions and not just the demo.")
    return " ".join(parts)


def problem(b: dict[str, Any]) -> str:
    p = b["project"]
    criterion = _quote(p["success_criteria"]) if p["success_criteria"] else \
        _todo("a measurable success criterion")
    return "\n\n".join([
        f"The problem, in my words: {p['problem'] or _todo('describe the problem')}",
        f"The people who have it are {p['audience'] or _todo('name the audience')}. I picked "
        "this problem because I have context that most builders do not have: "
        f"{p['personal_context'] or _todo('your personal context: why you')}. That context "
        "shaped which parts of the problem I treated as essential and which I left out, and "
        "it is the reason I trusted my own judgement when the first users disagreed with "
        "each other.",
        "Before writing code I wrote down what success would look like, so that I could not "
        "quietly move the goalposts later: "
        f"{criterion}. A criterion with a number in it is uncomfortable, because it can "
        "fail, and that is exactly why it is useful.",
    ])


def built(b: dict[str, Any]) -> str:
    p = b["project"]
    audit = b.get("audit") or {}
    scope = p["mvp_scope"]
    text = [("I kept the first version to the smallest thing that would be useful: "
             f"{_join(scope)}. " if scope else _todo("the MVP's core features") + " ")
            + "Everything else went on a list for later. Keeping the scope this small was a "
              "decision, not an accident: each extra feature would have delayed the moment "
              "real people could use it, and real use is where the surprises came from."]
    repo = p["repo"] or _todo("the repository URL")
    findings = audit.get("findings") or []
    if findings:
        text.append(f"The code lives at {repo}. When the coach audited the repository it "
                    f"found: {_join(findings)}.")
    else:
        text.append(f"The code lives at {repo}.")
    text.append("The first real run told me more than any plan: "
                + (_quote(p["usage_note"]) if p["usage_note"] else _todo("what happened when "
                                                                          "you first ran it"))
                + ". Watching the tool meet real input is what turned a prototype into "
                  "something I was willing to put behind a URL.")
    return "\n\n".join(text)


def deployment(b: dict[str, Any]) -> str:
    checks = b["deployments"]
    if not checks:
        return _todo("where the tool is deployed and how you deployed it")
    ok = [d for d in checks if d.get("ok")]
    lines = []
    if ok:
        d = ok[-1]
        lines.append(f"The tool is deployed at {d.get('final_url') or d['url']}. The coach "
                     f"fetched it itself on {d['checked_on']} and got HTTP "
                     f"{d.get('status_code')} in {d.get('latency_ms')} ms.")
    failed = [d for d in checks if not d.get("ok")]
    if failed:
        lines.append("It did not pass the first time: " + _join(
            [f"a check of {d['url']} failed ({d.get('reason')})" for d in failed]) +
            ". Each failure was a small lesson about running software rather than writing it.")
    for d in ok:
        for warning in d.get("warnings") or []:
            lines.append(f"One warning came with it: {warning}")
    lines.append("Deploying to a real URL forced decisions a notebook never asks for: where "
                 "secrets live, what happens on a cold start, and what a user sees when a model "
                 "call fails. " + _todo("the hosting choice and why you made it"))
    return " ".join(lines)


def evals_section(b: dict[str, Any]) -> str:
    evals, ci = b.get("evals"), b.get("ci_gate")
    if not evals:
        # Still go on to the CI gate: a missing one gets its own [TODO].
        text = [_todo("your eval set: how many cases, how they are graded, the pass rate")]
    else:
        rate = _percent(evals.get("pass_rate")) or _todo("the latest pass rate")
        text = [f"The eval set has {evals.get('cases')} cases, graded by "
                f"{evals.get('grader') or _todo('the grading method')}, and the latest run "
                f"passes {rate} of them. The cases came from the failures I actually saw, "
                "which makes the pass rate mean something: each case stands for a mistake I "
                "do not want to make twice."]
    if ci:
        where = f" ({ci['config_path']})" if ci.get("config_path") else ""
        provider = ci.get("provider") or _todo("the CI provider")
        text.append(f"The evals run in CI on {provider}{where}, and a change that "
                    "makes them worse does not merge. Without that gate every prompt change "
                    "would be a coin flip.")
    else:
        text.append(_todo("the CI gate that runs the evals and blocks regressions"))
    return "\n\n".join(text)


def observability(b: dict[str, Any]) -> str:
    obs, cost, usage = b.get("observability"), b.get("cost_tracking"), b["project_usage"]
    text = []
    if obs:
        link = f" (for example {obs['link']})" if obs.get("link") else ""
        tool = obs.get("tool") or _todo("the tracing tool")
        text.append(f"Every request is traced with {tool}{link}. When an answer "
                    "was wrong I could read exactly what the model saw, which turned vague "
                    "bug reports into specific fixes.")
    else:
        text.append(_todo("the tracing tool you use and a link to a trace or dashboard"))
    if cost:
        text.append(f"Running it costs about ${cost.get('cost_usd')} per {cost.get('per')}. "
                    "Knowing that number early changed which model I could afford to call and "
                    "how often.")
    else:
        text.append(_todo("what it costs per request, day or month"))
    for u in usage:
        spent = f"${u['cost_usd']}" if u.get("cost_usd") is not None else "an unknown amount"
        text.append(f"Recorded usage: {u['requests']} request(s) on {u['model']} used "
                    f"{u['input_tokens']} input and {u['output_tokens']} output tokens, "
                    f"{spent}.")
    return " ".join(text)


def lessons(b: dict[str, Any], kind: str, lead: str, empty: str) -> str:
    items = b["lessons"][kind]
    if not items:
        return _todo(empty)
    paragraphs = [lead]
    # The learner's words are the facts; why each one mattered is theirs to say, so each
    # gets a prompt rather than an invented consequence.
    for i, item in enumerate(items):
        follow = REFLECTIONS[(i + len(kind)) % len(REFLECTIONS)]
        paragraphs.append(f"{_quote(item)}. {follow} " + _todo(f"what this {KIND_WORDS[kind]} "
                                                                 "changed in practice"))
    return "\n\n".join(paragraphs)


KIND_WORDS = {"worked": "success", "didnt_work": "failure", "tradeoff": "tradeoff",
              "decision": "decision"}
REFLECTIONS = (
    "I noted it when it happened, which is why it is here in my own words.",
    "It is the kind of lesson that is easy to forget once the code works, so I wrote it "
    "down at the time.",
    "A reader should weigh it against the evidence above rather than take it on trust.",
)


def voices(b: dict[str, Any]) -> str:
    """What the learner said along the way, and the facts they confirmed."""
    parts = []
    excerpts = b.get("transcript_excerpts") or []
    if excerpts:
        parts.append("Notes I sent to my coach while building, verbatim: "
                      + " ".join(_quote(e) + "." for e in excerpts))
    confirmed = b.get("confirmed") or []
    if confirmed:
        parts.append("Facts I confirmed for this write-up: " + _join(confirmed) + ".")
    for other in b.get("other") or []:
        parts.append("Other evidence I recorded: " + ", ".join(
            f"{k}: {v}" for k, v in other.items()) + ".")
    return " ".join(parts)


def next_steps(b: dict[str, Any]) -> str:
    caps = b["project"]["capabilities"]
    base = (f"This project exercised {_join([c.replace('_', ' ') for c in caps])}. "
            if caps else "")
    base = (voices(b) + "\n\n" + base) if voices(b) else base
    return base + ("The next project should be harder on purpose: more capabilities, a "
                   "sharper success criterion and an eval set written before the code. "
                   + _todo("what you would build next and which new capability it adds"))


def appendix(b: dict[str, Any]) -> str:
    rows = []
    evals = b.get("evals") or {}
    if evals:
        rows += [("eval cases", evals.get("cases")), ("pass rate", _percent(
            evals.get("pass_rate"))), ("grader", evals.get("grader"))]
    for d in b["deployments"][-1:]:
        rows += [("deployment", d.get("final_url") or d["url"]),
                 ("HTTP status", d.get("status_code")), ("latency (ms)", d.get("latency_ms"))]
    cost = b.get("cost_tracking") or {}
    if cost:
        rows.append((f"cost per {cost.get('per')}", f"${cost.get('cost_usd')}"))
    audit = b.get("audit") or {}
    if audit:
        rows.append(("commits", audit.get("commits")))
    if not rows:
        return _todo("the metrics table: evals, latency, cost")
    table = ["| metric | value |", "|---|---|"]
    table += [f"| {k} | {v if v is not None else _todo(k)} |" for k, v in rows]
    return "\n".join(table)


def offline_draft(bundle: dict[str, Any]) -> str:
    """A Markdown post-mortem from the bundle alone."""
    body = {
        "TL;DR": tldr(bundle),
        "The problem and why me": problem(bundle),
        "What I built": built(bundle),
        "Deployment": deployment(bundle),
        "Evals": evals_section(bundle),
        "Observability and cost": observability(bundle),
        "What worked": lessons(bundle, "worked", "Some things worked better than I expected.",
                               "what worked, and why"),
        "What didn't": lessons(bundle, "didnt_work", "Not everything worked, and the "
                               "failures taught me the most.", "what didn't work, and why"),
        "Tradeoffs": lessons(bundle, "tradeoff", "Every version of this tool was a set of "
                             "tradeoffs; these are the ones I would make again, or not.",
                             "the tradeoffs you made and what they cost")
        + ("\n\n" + lessons(bundle, "decision", "Decisions I made along the way:", "")
           if bundle["lessons"]["decision"] else ""),
        "What I'd do next": next_steps(bundle),
        "Appendix: metrics": appendix(bundle),
    }
    title = f"# Post-mortem: {bundle['project']['title']}"
    return "\n\n".join([title, *(f"## {name}\n\n{text}" for name, text in body.items())]) + "\n"
