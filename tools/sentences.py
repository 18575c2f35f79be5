"""A draft's sentences and the records each one rests on.

A drafter returns a `Draft`: the Markdown and, for every sentence in it, its kind and
sources. `fact` and `quote` sentences name the records they rest on (`evidence:12`,
`lesson:5`, `transcript:33`, `project:1:problem`, `usage:2`); `framing` sentences explain
and connect without claiming anything about the project; `todo` sentences are the
`[TODO: …]` questions for the learner. The grounding check reports a factual sentence
with no source, and a first-person sentence that is not the learner's own recorded words.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

KINDS = ("fact", "quote", "framing", "todo")
FIRST_PERSON = re.compile(r"\b(?:i|i'm|i've|i'd|i'll|me|my|mine|myself|we|we're|we've|we'd|"
                          r"our|ours|ourselves|us)\b", re.I)
QUOTED = re.compile(r"“[^”]*”|\"[^\"\n]*\"")
TODO = re.compile(r"\[TODO:[^\]]*\]", re.I)
FIGURE = re.compile(r"\d|https?://", re.I)
# A sentence ends at . ! ? (or one closing a quote) followed by a space, or at a line end;
# a “quotation” is never cut, whatever punctuation the learner's words hold.
# A [TODO: …] question is a sentence of its own.
SENTENCE = re.compile(r"\[TODO:[^\]\n]*\]|(?:“[^”\n]*”|[^\n.!?\[]|\[(?!TODO:)|"
                      r"[.!?](?![\s”\"]|$)|[.!?][”\"](?!\s|$))+[.!?]?[”\"]?", re.M)


@dataclass
class Sentence:
    text: str
    kind: str
    sources: list[str] = field(default_factory=list)
    section: str = ""
    todo: str | None = None  # the question's key, for a `todo` sentence

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass
class Todo:
    """A question the draft leaves for the learner, and where the answer is stored:
    `lesson:KIND` (a new lesson) or `note:KIND` (a note on a record, KIND a lesson kind or
    `note`)."""

    key: str
    question: str
    store: str = "note:note"
    skipped: bool = False  # the learner chose not to answer: the [TODO] stays, unasked

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass
class Draft:
    markdown: str
    sentences: list[Sentence]
    todos: list[Todo] = field(default_factory=list)


def normalize(text: str) -> str:
    """Lower case, curly quotes and punctuation out, whitespace collapsed: for comparing a
    sentence with the record it came from."""
    text = text.lower().replace("’", "'")
    return " ".join(re.sub(r"[^\w'$%./:-]+", " ", text).split()).strip(" .")


def first_person_outside_quotes(text: str) -> bool:
    return bool(FIRST_PERSON.search(QUOTED.sub(" ", TODO.sub(" ", text))))


def learner_words(bundle: dict[str, Any]) -> list[str]:
    """Everything the learner said that the records hold, normalized."""
    p = bundle.get("project") or {}
    texts = [p.get(k) or "" for k in ("problem", "audience", "personal_context",
                                      "success_criteria", "usage_note")]
    texts += p.get("mvp_scope") or []
    for items in (bundle.get("lessons") or {}).values():
        texts += items
    texts += bundle.get("transcript_excerpts") or []
    texts += [str(c) for c in bundle.get("confirmed") or []]
    texts += [a.get("answer", "") for a in (bundle.get("interview") or {}).values()]
    for kind in ("ci_gate", "cost_tracking"):
        record = bundle.get(kind) or {}
        texts += [str(record.get(k) or "") for k in ("description", "note")]
    return [normalize(t) for t in texts if t]


def in_learner_words(text: str, words: list[str]) -> bool:
    """A first-person sentence is allowed when it is (a close copy of) recorded words."""
    target = normalize(TODO.sub(" ", text))
    return bool(target) and any(target in w for w in words)


def record_index(bundle: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """Each record's id and the strings and figures it holds, to attribute a sentence."""
    r = bundle.get("records") or {}
    pid = r.get("project", bundle.get("project", {}).get("id"))
    out: list[tuple[str, list[str]]] = []
    p = bundle.get("project") or {}
    for key in ("title", "problem", "audience", "personal_context", "success_criteria",
                "repo", "usage_note"):
        if p.get(key):
            out.append((f"project:{pid}:{key}", [str(p[key])]))
    if p.get("mvp_scope"):
        out.append((f"project:{pid}:mvp_scope", [str(x) for x in p["mvp_scope"]]))
    if p.get("capabilities"):
        out.append((f"project:{pid}:capabilities",
                    [c.replace("_", " ") for c in p["capabilities"]] + p["capabilities"]))
    for kind, eid in (r.get("evidence") or {}).items():
        if eid is not None and bundle.get(kind):
            out.append((f"evidence:{eid}", _values(bundle[kind])))
    for eid, d in zip(r.get("deployments") or [], bundle.get("deployments") or [],
                      strict=False):
        out.append((f"evidence:{eid}", _values(d)))
    for kind, ids in (r.get("lessons") or {}).items():
        for lid, text in zip(ids, (bundle.get("lessons") or {}).get(kind, []), strict=False):
            out.append((f"lesson:{lid}", [text]))
    for tid, text in zip(r.get("transcript") or [], bundle.get("transcript_excerpts") or [],
                         strict=False):
        out.append((f"transcript:{tid}", [text]))
    for uid, u in zip(r.get("usage") or [], bundle.get("project_usage") or [], strict=False):
        out.append((f"usage:{uid}", _values(u)))
    for eid, text in zip(r.get("confirmed") or [], bundle.get("confirmed") or [],
                         strict=False):
        out.append((f"evidence:{eid}", [str(text)]))
    for key, eid in (r.get("interview") or {}).items():
        answer = (bundle.get("interview") or {}).get(key, {}).get("answer")
        if answer:
            out.append((f"evidence:{eid}", [answer]))
    return out


def _values(obj: Any) -> list[str]:
    if isinstance(obj, dict):
        return [v for x in obj.values() for v in _values(x)]
    if isinstance(obj, list):
        return [v for x in obj for v in _values(x)]
    if obj is None or isinstance(obj, bool):
        return []
    return [str(obj)]


FIGURE_TOKEN = re.compile(r"https?://[^\s<>\"')\]”]+|\$?\d[\d,.]*%?")


def attribute(text: str, index: list[tuple[str, list[str]]]) -> list[str]:
    """The records a sentence rests on: those whose figures or phrases it repeats."""
    body = TODO.sub(" ", text)
    low = normalize(body)
    figures = {t.rstrip(".,;:/%").replace(",", "").lstrip("$")
               for t in FIGURE_TOKEN.findall(body)}
    sources = []
    for source, values in index:
        for value in values:
            v = normalize(value)
            hit = (len(v) >= 4 and v in low) or (
                FIGURE.search(value) is not None and any(
                    f and (f in value.replace(",", "") or f == value.rstrip("/"))
                    for f in figures if len(f) >= 1 and f.strip(".")))
            if hit:
                sources.append(source)
                break
    return sources


def classify(text: str) -> str:
    """The kind of a sentence whose drafter did not say: a todo, a factual claim (a figure,
    a quotation, or the first person) or framing."""
    if not TODO.sub("", text).strip(" .:;,-"):
        return "todo"
    body = TODO.sub(" ", text)
    if QUOTED.search(body):
        return "quote"
    if FIGURE.search(body) or FIRST_PERSON.search(body):
        return "fact"
    return "framing"


def split_markdown(markdown: str) -> list[tuple[str, str]]:
    """(section, sentence) for every sentence of a Markdown text, headings left out."""
    section = ""
    out: list[tuple[str, str]] = []
    for line in markdown.splitlines():
        stripped = line.strip()
        if not stripped or set(stripped) <= set("|-: "):
            continue
        if stripped.startswith("#"):
            section = stripped.lstrip("#").strip()
            continue
        if stripped.startswith("|"):
            out.append((section, stripped))
            continue
        for m in SENTENCE.finditer(stripped.lstrip("-*> ")):
            sentence = m.group(0).strip()
            if sentence:
                out.append((section, sentence))
    return out


def sentences_of(markdown: str, bundle: dict[str, Any]) -> list[Sentence]:
    """Sentences with sources for a text a drafter returned without them."""
    index = record_index(bundle)
    out = []
    for section, text in split_markdown(markdown):
        kind = classify(text)
        sources = attribute(text, index) if kind != "todo" else []
        out.append(Sentence(text, kind, sources, section))
    return out


def as_json(sentences: list[Sentence]) -> list[dict[str, Any]]:
    return json.loads(json.dumps([s.as_dict() for s in sentences]))
