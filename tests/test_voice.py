"""The voice rule and the writing quality of the offline drafter, on thin, typical, rich
and contradicted bundles (evals/bundles.py), before and after interview answers: nothing
in the learner's voice that the learner did not say, no invented events, no slips, every
factual sentence with a source, contradictions as questions."""

from __future__ import annotations

import re
from typing import Any

import pytest

from evals.bundles import BUNDLES, answered, contradicted, thin, typical
from tools.drafter import offline_compose, offline_draft
from tools.gates import word_count
from tools.grounding import grounding_report
from tools.sentences import (
    QUOTED,
    TODO,
    first_person_outside_quotes,
    learner_words,
    normalize,
    sentences_of,
)

# What the drafter used to say in the learner's voice with no record behind it (issue 14).
INVENTED = ("first users", "failures I actually saw", "read exactly what the model saw",
            "changed which model I could afford", "in my own words", "taught me the most",
            "vague bug reports", "I noted it when it happened", "I wrote it down at the time")


def answer_all(bundle: dict[str, Any]) -> dict[str, Any]:
    """Answer every question the draft asks, in the learner's words, until none is left."""
    for _ in range(5):
        draft = offline_compose(bundle)
        if not draft.todos:
            return bundle
        bundle = answered(bundle, {t.key: f"I would answer that from my notes: the {t.key} "
                                          "part went as planned once I tested it on my ward."
                                   for t in draft.todos}, first_id=900 + len(
                                       bundle["interview"]) * 10)
    return bundle


def prose(markdown: str) -> str:
    """The draft's own words: quotations, [TODO]s, URLs and table rows taken out."""
    lines = [ln for ln in markdown.splitlines() if not ln.startswith(("|", "#"))]
    text = "\n".join(lines)
    counter = iter(range(10_000))
    for pattern in (TODO, QUOTED, re.compile(r"https?://\S+|[\w.-]*/[\w./-]+")):
        text = pattern.sub(lambda m: " X" + "".join(chr(97 + int(d)) for d in str(
            next(counter))) + " ", text)
    return text


CASES = [(name, stage) for name in BUNDLES for stage in ("asked", "answered")]


def bundle_for(name: str, stage: str) -> dict[str, Any]:
    b = BUNDLES[name]()
    return answer_all(b) if stage == "answered" else b


@pytest.mark.parametrize("name, stage", CASES)
def test_no_slips(name: str, stage: str) -> None:
    markdown = offline_draft(bundle_for(name, stage))
    own = prose(markdown)
    assert not re.search(r"\b(\w+)\s+\1\b", own, re.I), re.search(r"\b(\w+)\s+\1\b", own, re.I)
    assert not re.search(r"[.,;:!?]\s*[.,;:]", own), re.search(r"[.,;:!?]\s*[.,;:]", own)
    assert not re.search(r"\(\s*\)", markdown)
    assert "(for example" not in markdown and "None" not in markdown
    assert "request(s)" not in markdown and ".." not in own


@pytest.mark.parametrize("name, stage", CASES)
def test_first_person_only_in_the_learners_recorded_words(name: str, stage: str) -> None:
    b = bundle_for(name, stage)
    draft = offline_compose(b)
    words = learner_words(b)
    for s in draft.sentences:
        for quoted in QUOTED.findall(s.text):
            assert normalize(quoted) in " | ".join(words), (quoted, s.text)
        if first_person_outside_quotes(s.text):
            assert s.kind == "quote" and any(normalize(s.text) in w for w in words), s.text
    for phrase in INVENTED:
        assert phrase.lower() not in draft.markdown.lower(), phrase


@pytest.mark.parametrize("name, stage", CASES)
def test_every_factual_sentence_names_records_that_exist(name: str, stage: str) -> None:
    b = bundle_for(name, stage)
    draft = offline_compose(b)
    r = b["records"]
    known = {f"evidence:{i}" for i in [*r["evidence"].values(), *r["deployments"],
                                       *r["confirmed"], *r["other"],
                                       *r["interview"].values()] if i is not None}
    known |= {f"lesson:{i}" for ids in r["lessons"].values() for i in ids}
    known |= {f"transcript:{i}" for i in r["transcript"]} | {f"usage:{i}" for i in r["usage"]}
    for s in draft.sentences:
        assert s.text in draft.markdown
        if s.kind in ("fact", "quote"):
            assert s.sources, s.text
            for source in s.sources:
                assert source in known or source.startswith(f"project:{r['project']}:"), source
        if s.kind == "todo":
            assert TODO.fullmatch(s.text) and s.todo
        if s.kind == "framing":
            assert not re.search(r"\d", s.text.replace("|---|---|", "")), s.text
    sentences = [s.as_dict() for s in draft.sentences]
    report = grounding_report(draft.markdown, b, sentences)
    assert report["unsupported"] == [], report["unsupported"]
    # The same draft read back without its sources attributes every factual sentence too.
    assert grounding_report(draft.markdown, b, [s.as_dict() for s in sentences_of(
        draft.markdown, b)])["unsupported"] == []


def test_a_thin_project_is_asked_not_narrated() -> None:
    b = thin()
    draft = offline_compose(b)
    facts = [s for s in draft.sentences if s.kind in ("fact", "quote")]
    # Only what the learner recorded is stated: the title and audience, the problem, evals.
    assert len(facts) <= 10, [s.text for s in facts]
    assert len(draft.todos) >= 15
    assert all(not first_person_outside_quotes(s.text) for s in draft.sentences)
    assert set(re.findall(r"\d+", prose(draft.markdown))) <= {"12", "75"}  # the evals


def test_the_typical_draft_reaches_the_gate_length_and_stays_under_it_when_answered() -> None:
    assert 1200 <= word_count(offline_draft(typical())) <= 2000
    assert 1200 <= word_count(offline_draft(answer_all(typical()))) <= 2000


def test_an_answer_replaces_its_question_in_the_learners_words() -> None:
    b = typical()
    [todo] = [t for t in offline_compose(b).todos if t.key == "hosting"]
    after = answered(b, {"hosting": "I host it on a small VM at my old hospital's trust. "
                                    "Secrets were the hard part"})
    draft = offline_compose(after)
    assert todo.question not in draft.markdown
    assert "I host it on a small VM at my old hospital's trust. Secrets were the hard part." \
        in draft.markdown
    [s] = [s for s in draft.sentences if s.text.startswith("I host it")]
    eid = after["records"]["interview"]["hosting"]
    assert (s.kind, s.sources) == ("quote", [f"evidence:{eid}"])


def test_a_stated_ci_gate_the_audit_did_not_find_becomes_a_question() -> None:
    b = contradicted()
    draft = offline_compose(b)
    [todo] = [t for t in draft.todos if t.key == "contradiction:ci_gate"]
    assert ".github/workflows/ci.yml" in todo.question and "audit found no CI" in todo.question
    assert f"[TODO: {todo.question}]" in draft.markdown
    # No sentence says the audit found a CI configuration; the statement stays a statement.
    assert not any("audit found CI configuration" in s.text for s in draft.sentences)
    assert "contradiction:ci_gate" not in [t.key for t in offline_compose(typical()).todos]
