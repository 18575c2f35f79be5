"""Graders: small objects with one `evaluate` method each."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

from evals.dataset import Expect
from evals.harness import Outcome
from tools.gates import missing_sections


@dataclass
class Score:
    grader: str
    passed: bool
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"grader": self.grader, "passed": self.passed, "detail": self.detail}


class Grader(Protocol):
    name: str

    def evaluate(self, o: Outcome) -> Score: ...


def _subset(expected: dict[str, Any], actual: dict[str, Any]) -> bool:
    return all(actual.get(k) == v for k, v in expected.items())


def _calls(o: Outcome) -> list[dict[str, Any]]:
    return [c for r in o.results for c in r.tool_calls]


@dataclass
class Steps:
    expected: list[str]
    name: str = "steps"

    def evaluate(self, o: Outcome) -> Score:
        actual = [p["step"] for p in o.state["projects"]]
        return Score(self.name, actual == self.expected, f"steps {actual}")


@dataclass
class ProjectCount:
    expected: int
    name: str = "projects"

    def evaluate(self, o: Outcome) -> Score:
        n = len(o.state["projects"])
        return Score(self.name, n == self.expected, f"{n} project(s)")


@dataclass
class ToolsCalled:
    called: list[str]
    not_called: list[str]
    inputs: list[dict[str, Any]]
    name: str = "tool calls"

    def evaluate(self, o: Outcome) -> Score:
        calls = _calls(o)
        names = {c["name"] for c in calls}
        problems = [f"missing {n}" for n in self.called if n not in names]
        problems += [f"unexpected {n}" for n in self.not_called if n in names]
        for want in self.inputs:
            if not any(c["name"] == want["name"] and isinstance(c["input"], dict)
                       and _subset(want.get("input", {}), c["input"]) for c in calls):
                problems.append(f"no {want['name']} call with {want.get('input')}")
        return Score(self.name, not problems, "; ".join(problems) or f"called {sorted(names)}")


@dataclass
class LastTurnTools:
    """The tools the case's last turn called, exactly: `[]` says a question (say) changed
    nothing, since the coach stores and advances only through tools."""

    expected: list[str]
    name: str = "last turn's tools"

    def evaluate(self, o: Outcome) -> Score:
        actual = [c["name"] for c in o.results[-1].tool_calls] if o.results else None
        return Score(self.name, actual == self.expected, f"last turn called {actual}")


@dataclass
class Gates:
    passed: list[str]
    refused: list[str]
    name: str = "gate decisions"

    def evaluate(self, o: Outcome) -> Score:
        decisions = o.state["gates"]
        got_passed = {d["step"] for d in decisions if d["passed"]}
        got_refused = {d["step"] for d in decisions if not d["passed"]}
        problems = [f"{s} gate never passed" for s in self.passed if s not in got_passed]
        problems += [f"{s} gate never refused" for s in self.refused if s not in got_refused]
        return Score(self.name, not problems,
                     "; ".join(problems) or f"passed {sorted(got_passed)}, "
                                            f"refused {sorted(got_refused)}")


@dataclass
class EvidenceStored:
    expected: dict[str, dict[str, Any]]
    absent: list[str]
    name: str = "evidence"

    def evaluate(self, o: Outcome) -> Score:
        evidence = [e for p in o.state["projects"] for e in p["evidence"]]
        problems = []
        for kind, fields in self.expected.items():
            if not any(e["kind"] == kind and _subset(fields, e) for e in evidence):
                problems.append(f"no {kind} evidence with {fields}")
        problems += [f"unexpected {k} evidence" for k in self.absent
                     if any(e["kind"] == k for e in evidence)]
        return Score(self.name, not problems, "; ".join(problems) or
                     f"{len(evidence)} evidence record(s)")


@dataclass
class LessonsStored:
    expected: dict[str, int]
    name: str = "lessons"

    def evaluate(self, o: Outcome) -> Score:
        lessons = [le for p in o.state["projects"] for le in p["lessons"]]
        counts = {k: sum(1 for le in lessons if le["kind"] == k) for k in self.expected}
        return Score(self.name, counts == self.expected, f"lessons {counts}")


@dataclass
class ProjectFields:
    expected: dict[str, Any]
    name: str = "project fields"

    def evaluate(self, o: Outcome) -> Score:
        if not o.state["projects"]:
            return Score(self.name, False, "no project")
        first = o.state["projects"][0]
        wrong = {k: first.get(k) for k, v in self.expected.items() if first.get(k) != v}
        return Score(self.name, not wrong, f"differs: {wrong}" if wrong else "as expected")


@dataclass
class Replies:
    contain: list[str]
    last_contains: list[str]
    exclude: list[str]
    name: str = "replies"

    def evaluate(self, o: Outcome) -> Score:
        text = "\n".join(o.replies).lower()
        last = o.replies[-1].lower() if o.replies else ""
        problems = [f"no reply mentions {s!r}" for s in self.contain if s.lower() not in text]
        problems += [f"last reply lacks {s!r}" for s in self.last_contains
                     if s.lower() not in last]
        problems += [f"a reply mentions {s!r}" for s in self.exclude if s.lower() in text]
        return Score(self.name, not problems, "; ".join(problems) or "as expected")


@dataclass
class Counts:
    errors: int | None
    turns: int | None
    name: str = "turns and errors"

    def evaluate(self, o: Outcome) -> Score:
        problems = []
        if self.errors is not None and len(o.errors) != self.errors:
            problems.append(f"{len(o.errors)} refused message(s), expected {self.errors}")
        if self.turns is not None and o.state["turns"] != self.turns:
            problems.append(f"{o.state['turns']} stored turn(s), expected {self.turns}")
        return Score(self.name, not problems, "; ".join(problems) or "as expected")


@dataclass
class Spans:
    expected: list[str]
    name: str = "trace spans"

    def evaluate(self, o: Outcome) -> Score:
        names = {s.name for s in o.spans}
        missing = [n for n in self.expected if n not in names]
        roots = [s for s in o.spans if s.parent is None]
        ok = not missing and len(roots) == len(o.results)
        return Score(self.name, ok, f"missing {missing}" if missing else
                     f"{len(roots)} turn trace(s) for {len(o.results)} turn(s)")


@dataclass
class Postmortem:
    expected: dict[str, Any]
    name: str = "post-mortem"

    def evaluate(self, o: Outcome) -> Score:
        versions = [v for p in o.state["projects"] for v in p["postmortems"]]
        if not versions:
            return Score(self.name, False, "no post-mortem version")
        v = versions[-1]
        e, problems = self.expected, []
        if "source" in e and v["source"] != e["source"]:
            problems.append(f"source {v['source']}")
        if not e.get("min_words", 0) <= v["words"] <= e.get("max_words", 10**6):
            problems.append(f"{v['words']} words")
        if e.get("sections") and missing_sections(v["text"]):
            problems.append(f"missing sections {missing_sections(v['text'])}")
        grounded = v["report"].get("grounding", {}).get("grounded")
        if "grounded" in e and grounded != e["grounded"]:
            problems.append(f"grounded={grounded}")
        for phrase in e.get("contains", []):
            if phrase.lower() not in v["text"].lower():
                problems.append(f"lacks {phrase!r}")
        problems += _draft_problems(e, v)
        return Score(self.name, not problems,
                     "; ".join(problems) or f"v{v['version']}, {v['words']} words")


def _draft_problems(e: dict[str, Any], v: dict[str, Any]) -> list[str]:
    """Post-mortem voice and sources: phrases it must not hold, [TODO]s, every factual
    sentence with a source, no first-person sentence the records do not hold."""
    problems = [f"holds {p!r}" for p in e.get("excludes", []) if p.lower() in v["text"].lower()]
    todos = re.findall(r"\[TODO:([^\]]*)\]", v["text"])
    for phrase in e.get("asks", []):
        if not any(phrase.lower() in t.lower() for t in todos):
            problems.append(f"asks nothing about {phrase!r}")
    if "max_todos" in e and len(todos) > e["max_todos"]:
        problems.append(f"{len(todos)} [TODO]s")
    if e.get("sourced"):
        sentences = v["report"].get("sentences") or []
        if not sentences:
            problems.append("no sentence sources")
        problems += [f"no source: {s['text'][:60]!r}" for s in sentences
                     if s["kind"] in ("fact", "quote") and not s.get("sources")]
        problems += [f"{u['kind']}: {u['sentence'][:60]!r}"
                     for u in v["report"].get("grounding", {}).get("unsupported", [])
                     if u["kind"] in ("sentence", "voice")]
    return problems


def graders_for(x: Expect) -> list[Grader]:
    out: list[Grader] = []
    if x.steps is not None:
        out.append(Steps(x.steps))
    if x.projects is not None:
        out.append(ProjectCount(x.projects))
    if x.tools_called or x.tools_not_called or x.tool_inputs:
        out.append(ToolsCalled(x.tools_called, x.tools_not_called, x.tool_inputs))
    if x.last_turn_tools is not None:
        out.append(LastTurnTools(x.last_turn_tools))
    if x.gates_passed or x.gates_refused:
        out.append(Gates(x.gates_passed, x.gates_refused))
    if x.evidence or x.no_evidence:
        out.append(EvidenceStored(x.evidence, x.no_evidence))
    if x.lessons:
        out.append(LessonsStored(x.lessons))
    if x.project_fields:
        out.append(ProjectFields(x.project_fields))
    if x.replies_contain or x.last_reply_contains or x.replies_exclude:
        out.append(Replies(x.replies_contain, x.last_reply_contains, x.replies_exclude))
    if x.errors is not None or x.turns is not None:
        out.append(Counts(x.errors, x.turns))
    if x.spans:
        out.append(Spans(x.spans))
    if x.postmortem is not None:
        out.append(Postmortem(x.postmortem))
    return out
