"""The offline post-mortem drafter: deterministic Markdown from the evidence bundle.

The voice rule: the draft says nothing in the learner's voice that the learner did not
say. The learner's own words appear quoted (or, for an answer to the interview, verbatim);
everything else is framing written without the first person ("The audit found …"). Where
the story needs a cause, a result, a feeling or an event that no record holds, the draft
asks for it with a `[TODO: …]` question, which the coach's interview turns into a question
in the chat. Its fixed sentences contain no digits, so every number in a draft comes from
the evidence. Every sentence carries its sources (tools/sentences.py).
"""

from __future__ import annotations

import re
from typing import Any

from tools.contradictions import contradictions
from tools.sentences import Draft, Sentence, Todo

SECTIONS = ("TL;DR", "The problem and why me", "What I built", "Deployment", "Evals",
            "Observability and cost", "What worked", "What didn't", "Tradeoffs",
            "What I'd do next", "Appendix: metrics")
TARGET_WORDS = 1500
KIND_WORDS = {"worked": "what worked", "didnt_work": "what didn't work",
              "tradeoff": "tradeoff", "decision": "decision"}
CAPABILITY_NAMES = {"tool_use": "tool use", "evals_ci": "evals in CI",
                    "structured_output": "structured output", "multi_user": "multiple users",
                    "fine_tuning": "fine-tuning"}


def _clip(text: str) -> str:
    """One line, no trailing punctuation or stray quotes: ready to quote or join."""
    return " ".join(str(text).split()).strip().strip("“”\"").rstrip(".;:,").strip()


def _quote(text: str) -> str:
    return f"“{_clip(text)}”"


def _join(items: list[str]) -> str:
    items = [_clip(i) for i in items if _clip(i)]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _percent(rate: Any) -> str | None:
    if rate is None:
        return None
    value = float(rate)
    return f"{value * 100:g}%" if value <= 1 else f"{value:g}%"


def _end(text: str) -> str:
    text = " ".join(text.split())
    return text if re.search(r"(?:[.!?][”\"]?|:)$", text) else text + "."


def _sentences(text: str) -> list[str]:
    """An answer in the learner's words, cut into sentences, each capitalised and ended."""
    parts = re.split(r"(?<=[.!?])\s+", " ".join(text.split()))
    return [_end(p[0].upper() + p[1:]) for p in parts if p.strip(" .")]


class Writer:
    """Collects sentences by section and paragraph; a question already answered in the
    interview is replaced by the learner's answer."""

    def __init__(self, bundle: dict[str, Any]):
        self.bundle = bundle
        self.records = bundle.get("records") or {}
        self.pid = self.records.get("project", bundle["project"].get("id"))
        self.answers = bundle.get("interview") or {}
        self.sections: list[tuple[str, list[list[Sentence]]]] = []
        self.todos: list[Todo] = []

    # -- ids of the records a sentence rests on --------------------------------------

    def ev(self, kind: str) -> list[str]:
        eid = (self.records.get("evidence") or {}).get(kind)
        return [f"evidence:{eid}"] if eid is not None else []

    def field(self, *names: str) -> list[str]:
        return [f"project:{self.pid}:{n}" for n in names]

    def lesson(self, kind: str, i: int) -> list[str]:
        ids = (self.records.get("lessons") or {}).get(kind) or []
        return [f"lesson:{ids[i]}"] if i < len(ids) else []

    # -- writing ---------------------------------------------------------------------

    def section(self, name: str) -> None:
        self.sections.append((name, [[]]))

    def para(self) -> None:
        if self.sections[-1][1][-1]:
            self.sections[-1][1].append([])

    def add(self, text: str, kind: str, sources: list[str] | None = None,
            todo: str | None = None) -> None:
        name, paragraphs = self.sections[-1]
        done = text if kind == "todo" or text.startswith("|") else _end(text)
        paragraphs[-1].append(Sentence(done, kind,
                                       list(sources or []), name, todo))

    def fact(self, text: str, sources: list[str]) -> None:
        self.add(text, "fact", sources)

    def quote(self, text: str, sources: list[str]) -> None:
        self.add(text, "quote", sources)

    def frame(self, text: str) -> None:
        self.add(text, "framing")

    def ask(self, key: str, question: str, store: str = "note:note", about: str = "") -> None:
        """A [TODO] question, or the learner's answer to it if the interview has one."""
        answer = self.answers.get(key) or {}
        if answer.get("answer") and not answer.get("skipped"):
            eid = (self.records.get("interview") or {}).get(key)
            for sentence in _sentences(answer["answer"]):
                self.add(sentence, "quote", [f"evidence:{eid}"] if eid else [])
            return
        self.todos.append(Todo(key, f"{question} ({about})" if about else question, store,
                               bool(answer.get("skipped"))))
        self.add(f"[TODO: {question}]", "todo", todo=key)

    def draft(self) -> Draft:
        title = f"# Post-mortem: {_clip(self.bundle['project']['title'])}"
        blocks, sentences = [title], []
        for name, paragraphs in self.sections:
            body = []
            for paragraph in paragraphs:
                if not self.todos:  # nothing left to ask: no sentence about the [TODO]s
                    paragraph = [s for s in paragraph
                                 if not (s.kind == "framing" and "[TODO]" in s.text)]
                if not paragraph:
                    continue
                sentences += paragraph
                joiner = "\n" if paragraph[0].text.startswith("|") else " "
                body.append(joiner.join(s.text for s in paragraph))
            blocks.append(f"## {name}\n\n" + "\n\n".join(body))
        return Draft("\n\n".join(blocks) + "\n", sentences, self.todos)


def tldr(w: Writer) -> None:
    b, p = w.bundle, w.bundle["project"]
    w.section("TL;DR")
    if p["audience"]:
        w.fact(f"{_clip(p['title'])} is a tool for {_clip(p['audience'])}",
               w.field("title", "audience"))
    else:
        w.ask("audience", "Who is the tool for? Name the people as specifically as you can.")
    deployed = next((d for d in reversed(b["deployments"]) if d.get("ok")), None)
    if deployed:
        ids = w.records.get("deployments") or []
        w.fact(f"It runs at {deployed.get('final_url') or deployed['url']}, a URL the coach "
               "fetched itself", [f"evidence:{ids[b['deployments'].index(deployed)]}"]
               if ids else [])
    evals = b.get("evals")
    if evals and evals.get("cases"):
        rate = _percent(evals.get("pass_rate"))
        w.fact(f"Its eval set has {evals['cases']} cases"
               + (f" and a latest recorded pass rate of {rate}" if rate else ""), w.ev("evals"))
    w.frame("The sections below set out the recorded evidence step by step")
    w.frame("Each [TODO] marks a part of the story that only the author can tell")
    w.frame("Figures in this draft come from the coach's records: the deployment checks the "
            "coach ran, its audit of the repository, and what was stated at each step; the "
            "appendix lists them in one table")
    w.frame("A reviewer reading only this section should learn what the tool does, for whom, "
            "and how well it works")
    w.ask("tldr", "In one or two sentences: what is the most important thing this project "
          "taught you, and what would you tell someone about to build the same thing?")


def problem(w: Writer) -> None:
    p = w.bundle["project"]
    w.section("The problem and why me")
    w.frame("This section says who has the problem, why it matters to them, and why the "
            "author is placed to solve it")
    if p["problem"]:
        w.quote(f"The problem statement recorded at step one: {_quote(p['problem'])}",
                w.field("problem"))
    else:
        w.ask("problem", "What problem does the tool solve? Describe what happens today and "
              "what goes wrong.")
    if p["audience"]:
        w.fact(f"The people who have it are {_clip(p['audience'])}", w.field("audience"))
        w.ask("today", "What do these people do today without the tool, and what does that "
              "cost them?")
    w.para()
    if p["personal_context"]:
        w.quote(f"The personal context behind it: {_quote(p['personal_context'])}",
                w.field("personal_context"))
        w.frame("Context like this is what separates a project from a tutorial clone, "
                "because it decides which parts of the problem are essential")
        w.ask("context", "How did your own context change what you built or what you left "
              "out? Give one concrete example.")
    else:
        w.ask("personal_context", "Why you? What personal context do you have with this "
              "problem?")
    w.para()
    if p["success_criteria"]:
        w.quote(f"The success criterion recorded before the build: "
                f"{_quote(p['success_criteria'])}", w.field("success_criteria"))
        w.frame("A criterion with a number in it can fail, which is what makes it a useful "
                "test of the project")
        w.ask("criterion", "Did the tool meet this criterion? What did you measure, on "
              "what, and when?")
    else:
        w.ask("success_criteria", "What measurable success criterion did you set, and did "
              "the tool meet it?")


def built(w: Writer) -> None:
    b, p = w.bundle, w.bundle["project"]
    w.section("What I built")
    scope = p["mvp_scope"]
    if scope:
        noun = "feature" if len(scope) == 1 else "features"
        w.fact(f"The first version has {_number_word(len(scope))} core {noun}: {_join(scope)}",
               w.field("mvp_scope"))
        w.frame("A scope this small keeps the evidence easy to check, since each feature "
                "either works on real input or it does not")
    else:
        w.ask("mvp_scope", "What are the core features of the first version?")
    w.ask("left_out", "What did you leave out of the first version, and why?")
    w.para()
    if p["repo"]:
        w.fact(f"The code is at {p['repo']}", w.field("repo"))
    else:
        w.ask("repo", "Where is the code? Give the repository URL.")
    audit = b.get("audit") or {}
    if audit.get("findings"):
        w.fact(f"The coach audited the repository and found {_join(audit['findings'])}",
               w.ev("audit"))
        w.frame("The audit reads the repository at a commit, so its findings can be checked "
                "independently of this text")
    w.para()
    if p["usage_note"]:
        w.quote(f"The note from the first real run: {_quote(p['usage_note'])}",
                w.field("usage_note"))
        w.ask("first_run", "What did that first run show you that you had not expected, "
              "and what did you change because of it?")
    else:
        w.ask("usage_note", "What happened when you first ran it on real input?")


def _number_word(n: int) -> str:
    # Spelled out, so that the fixed text holds no digits the evidence lacks.
    return ("no", "one", "two", "three", "four", "five")[n] if n <= 5 else "several"


def deployment(w: Writer) -> None:
    b = w.bundle
    checks, ids = b["deployments"], w.records.get("deployments") or []
    w.section("Deployment")

    def src(d: dict[str, Any]) -> list[str]:
        return [f"evidence:{ids[checks.index(d)]}"] if ids else []

    ok = [d for d in checks if d.get("ok")]
    if ok:
        d = ok[-1]
        w.fact(f"The tool is deployed at {d.get('final_url') or d['url']}", src(d))
        w.fact(f"The coach fetched it on {d['checked_on']} and got HTTP {d.get('status_code')} "
               f"in {d.get('latency_ms')} ms", src(d))
        for warning in d.get("warnings") or []:
            w.fact(f"The check recorded a warning: {_clip(warning)}", src(d))
    for d in (d for d in checks if not d.get("ok")):
        reason = f" ({_clip(d['reason'])})" if d.get("reason") else ""
        w.fact(f"A check of {d['url']} on {d['checked_on']} failed{reason}", src(d))
    if not checks:
        w.ask("deployed", "Where is the tool deployed, and how did you deploy it?")
        return
    w.frame("A deployment check shows that the URL answers; it does not show how the tool "
            "is hosted, what a cold start costs, or what a user sees when a model call fails")
    w.ask("hosting", "Where is it hosted, and why that host? What went wrong while deploying, "
          "if anything, and how did you fix it?")


def evals_section(w: Writer, found: dict[str, str]) -> None:
    b = w.bundle
    evals, ci = b.get("evals"), b.get("ci_gate")
    w.section("Evals")
    if evals and evals.get("cases"):
        grader = _clip(evals["grader"]) if evals.get("grader") else None
        rate = _percent(evals.get("pass_rate"))
        w.frame("A pass rate means little without knowing what the cases cover and how the "
                "grader decides, so those answers matter as much as the number itself")
        w.fact(f"The eval set has {evals['cases']} cases"
               + (f", graded by {grader}" if grader else ""), w.ev("evals"))
        if rate:
            w.fact(f"The latest recorded run passes {rate} of them", w.ev("evals"))
        if not grader:
            w.ask("grader", "How are the eval cases graded?")
        audit = b.get("audit") or {}
        if audit.get("evals"):
            w.fact(f"The repository audit found eval files: {_join(audit['evals'])}",
                   w.ev("audit"))
        if not evals.get("verified"):
            w.frame("These figures are as stated at step four; the coach did not run the "
                    "evals itself")
        w.ask("eval_origin", "Where did the eval cases come from, and what does a failing "
              "case look like?")
    else:
        w.ask("evals", "Describe your eval set: how many cases, how they are graded, and the "
              "latest pass rate.")
    if "evals" in found:
        w.ask("contradiction:evals", found["evals"])
    w.para()
    w.frame("A CI gate turns the eval set from a report into a rule: a change that makes the "
            "evals worse should not merge")
    if ci:
        provider = _clip(ci["provider"]) if ci.get("provider") else None
        where = f" with the configuration {ci['config_path']}" if ci.get("config_path") else ""
        if provider:
            w.fact(f"The CI gate is recorded as {provider}{where}", w.ev("ci_gate"))
        else:
            w.ask("ci_provider", "Which CI provider runs the evals?")
        description = ci.get("description")
        if description and _clip(description) != provider:
            w.quote(f"It was described as {_quote(description)}", w.ev("ci_gate"))
        audit = b.get("audit") or {}
        if "ci_gate" in found:
            w.ask("contradiction:ci_gate", found["ci_gate"])
        elif audit.get("ci"):
            w.fact(f"The repository audit found CI configuration: {_join(audit['ci'])}",
                   w.ev("audit"))
        w.ask("ci_blocked", "Has the CI gate ever blocked a change? What was the change, and "
              "what did you do about it?")
    else:
        w.ask("ci_gate", "Which CI gate runs the evals and blocks regressions?")


def observability(w: Writer, found: dict[str, str]) -> None:
    b = w.bundle
    obs, cost, usage = b.get("observability"), b.get("cost_tracking"), b["project_usage"]
    w.section("Observability and cost")
    w.frame("Traces are what make a wrong answer debuggable, because they show what the model "
            "was given and what it returned for one request")
    if obs:
        tool = _clip(obs["tool"]) if obs.get("tool") else None
        if tool:
            w.fact(f"Requests are traced with {tool}", w.ev("observability"))
        else:
            w.ask("tracing_tool", "Which tracing tool do you use?")
        if obs.get("link"):
            w.fact(f"A recorded trace link is {obs['link']}", w.ev("observability"))
        audit = b.get("audit") or {}
        if "observability" in found:
            w.ask("contradiction:observability", found["observability"])
        elif audit.get("tracing"):
            w.fact(f"The repository audit found tracing code in {_join(audit['tracing'])}",
                   w.ev("audit"))
        w.ask("trace_story", "Describe one trace that helped you find or fix a problem: what "
              "did it show?")
    else:
        w.ask("observability", "Which tracing tool do you use, and where is a trace or "
              "dashboard?")
    w.para()
    w.frame("A cost per request, multiplied by the expected traffic, decides whether a tool "
            "can stay deployed and which model it can afford")
    if cost and cost.get("cost_usd") is not None:
        w.fact(f"The recorded cost is ${cost['cost_usd']} per {cost.get('per') or 'request'}",
               w.ev("cost_tracking"))
        if "cost_tracking" in found:
            w.ask("contradiction:cost_tracking", found["cost_tracking"])
        w.ask("cost_effect", "How did you measure this cost, and did knowing it change which "
              "model you call or how often?")
    else:
        w.ask("cost", "What does it cost to run, per request, day or month?")
    ids = w.records.get("usage") or []
    for i, u in enumerate(usage):
        spent = f"${u['cost_usd']}" if u.get("cost_usd") is not None else "an unknown amount"
        noun = "request" if u.get("requests") == 1 else "requests"
        w.fact(f"Recorded usage: {u['requests']} {noun} on {u['model']} used "
               f"{u['input_tokens']} input and {u['output_tokens']} output tokens, costing "
               f"{spent}", [f"usage:{ids[i]}"] if i < len(ids) else [])


LESSON_TEXT = {
    "worked": ("Each lesson below is quoted as it was recorded during the project; the question "
               "after it asks for the reason, which only the author knows. The lessons recorded "
               "as working:",
               "What worked better than you expected, and how do you know?",
               "Why did this work, and what would have happened without it?"),
    "didnt_work": ("Failures are often the most useful part of a post-mortem for a reader, "
                   "because they show how a problem was noticed and what changed. The lessons "
                   "recorded as not working:",
                   "What didn't work, and how did you find out?",
                   "How did you find out, and what did you change because of it?"),
    "tradeoff": ("A tradeoff means something only with both sides named: what was gained, "
                 "and what it cost. The tradeoffs recorded during the project:",
                 "Which tradeoffs did you make, and what did each one cost?",
                 "What did this tradeoff cost, and would you make it again?"),
    "decision": ("The decisions recorded during the project:",
                 "Which decisions did you make along the way, in the design, the model or the "
                 "data, and why?",
                 "Why did you decide this, and what did you consider instead?"),
}


MORE = {
    "worked": "Did anything else work well, in the build, the evals or the deployment?",
    "didnt_work": "Did anything else fail or surprise you, for instance in deployment, evals "
                  "or cost?",
}


def lessons(w: Writer, kind: str, heading: str | None) -> None:
    items = w.bundle["lessons"][kind]
    lead, empty, follow = LESSON_TEXT[kind]
    more = MORE.get(kind)
    if heading:
        w.section(heading)
    if not items:
        w.ask(f"{kind}:none", empty, f"lesson:{kind}")
        return
    for part in re.split(r"(?<=\.)\s+", lead):
        w.frame(part)
    for i, item in enumerate(items):
        w.para()
        w.quote(f"{KIND_WORDS[kind].capitalize()}: {_quote(item)}", w.lesson(kind, i))
        ids = (w.records.get("lessons") or {}).get(kind) or []
        key = f"lesson:{ids[i]}" if i < len(ids) else f"{kind}:{i}"
        w.ask(key, follow, f"note:{kind}", about=f"about {_quote(item)}")
    if more:
        w.para()
        w.ask(f"{kind}:more", more, f"note:{kind}")


def next_steps(w: Writer) -> None:
    b = w.bundle
    w.section("What I'd do next")
    caps = b["project"]["capabilities"]
    if caps:
        names = [CAPABILITY_NAMES.get(c, c.replace("_", " ")) for c in caps]
        w.fact(f"This project declares the capabilities {_join(names)}",
               w.field("capabilities"))
    w.frame("Step six asks for a next project that exercises more capabilities than this one")
    w.frame("A portfolio is read as a sequence, so the next project should build on what "
            "this one taught")
    w.ask("next", "What will you build next, and which new capability will it add?")
    w.ask("differently", "If you started this project again tomorrow, what would you do "
          "differently?")
    excerpts = b.get("transcript_excerpts") or []
    ids = w.records.get("transcript") or []
    if excerpts:
        w.para()
        for i, e in enumerate(excerpts):
            lead = "Notes sent to the coach during the project, verbatim: " if i == 0 else ""
            w.quote(lead + _quote(e), [f"transcript:{ids[i]}"] if i < len(ids) else [])
    confirmed = b.get("confirmed") or []
    if confirmed:
        w.para()
        w.quote("Facts confirmed for this write-up: " + _join([_quote(c) for c in confirmed]),
                [f"evidence:{i}" for i in w.records.get("confirmed") or []])
    for i, other in enumerate(b.get("other") or []):
        ids = w.records.get("other") or []
        w.fact("Other recorded evidence: " + "; ".join(f"{k}: {_clip(v)}"
                                                        for k, v in other.items()),
               [f"evidence:{ids[i]}"] if i < len(ids) else [])


def appendix(w: Writer) -> None:
    b = w.bundle
    w.section("Appendix: metrics")
    rows: list[tuple[str, Any, list[str]]] = []
    evals = b.get("evals") or {}
    if evals:
        rows += [(k, v, w.ev("evals")) for k, v in (
            ("eval cases", evals.get("cases")), ("pass rate", _percent(evals.get("pass_rate"))),
            ("grader", evals.get("grader")))]
    ids = w.records.get("deployments") or []
    for d in b["deployments"][-1:]:
        src = [f"evidence:{ids[-1]}"] if ids else []
        rows += [("deployment", d.get("final_url") or d["url"], src),
                 ("HTTP status", d.get("status_code"), src),
                 ("latency (ms)", d.get("latency_ms"), src)]
    cost = b.get("cost_tracking") or {}
    if cost:
        rows.append((f"cost per {cost.get('per')}", f"${cost.get('cost_usd')}",
                     w.ev("cost_tracking")))
    audit = b.get("audit") or {}
    if audit:
        rows.append(("commits", audit.get("commits"), w.ev("audit")))
    rows = [r for r in rows if r[1] is not None]
    if not rows:
        w.ask("metrics", "The metrics table: eval results, latency and cost, once recorded.")
        return
    w.frame("The table collects the figures quoted above in one place; each comes from a "
            "record the coach holds, named in the draft's sentence sources")
    w.para()
    w.add("| metric | value |\n|---|---|", "framing")
    for name, value, src in rows:
        w.add(f"| {name} | {value} |", "fact", src)


def offline_compose(bundle: dict[str, Any]) -> Draft:
    """A Markdown post-mortem from the bundle alone, with every sentence's sources."""
    w = Writer(bundle)
    found = contradictions(bundle)
    tldr(w)
    problem(w)
    built(w)
    deployment(w)
    evals_section(w, found)
    observability(w, found)
    lessons(w, "worked", "What worked")
    lessons(w, "didnt_work", "What didn't")
    lessons(w, "tradeoff", "Tradeoffs")
    w.para()
    lessons(w, "decision", None)
    next_steps(w)
    appendix(w)
    return w.draft()


def offline_draft(bundle: dict[str, Any]) -> str:
    """The Markdown of the offline draft."""
    return offline_compose(bundle).markdown
