"""The playbook search's quality gate: recall@3 and MRR on the labelled learner questions
may not fall below the numbers recorded in evals/playbook_baseline.json (run by `make test`;
`bench/playbook.py --update-baseline` records new ones after a deliberate improvement)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from playbook import PlaybookError, default_playbook
from playbook.answer import MIN_RELEVANCE
from playbook.quality import K, baseline_metrics, bm25_metrics, load_questions

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = ROOT / "evals" / "playbook_questions.yaml"
BASELINE = json.loads((ROOT / "evals" / "playbook_baseline.json").read_text())


def test_recall_and_mrr_do_not_fall_below_the_recorded_baseline() -> None:
    book = default_playbook()
    questions, _ = load_questions(QUESTIONS, set(book.by_id))
    assert len(questions) >= 100
    ours = bm25_metrics(book, questions)
    assert ours.questions == BASELINE["questions"], "questions changed: record a new baseline"
    assert ours.recall_at_k >= BASELINE[f"recall_at_{K}"] - 1e-9, ours.misses
    assert ours.mrr >= BASELINE["mrr"] - 1e-9
    assert ours.recall_at_k >= 0.90
    # The search must keep beating the plain keyword-overlap ranking it replaced.
    base = baseline_metrics(book, questions)
    assert ours.recall_at_k > base.recall_at_k and ours.mrr > base.mrr


def test_off_topic_questions_are_declined() -> None:
    book = default_playbook()
    _, off_topic = load_questions(QUESTIONS, set(book.by_id))
    assert off_topic
    for text in off_topic:
        hits = book.search(text)
        assert not hits or book.relevance(text, hits[0].entry) < MIN_RELEVANCE, text


def test_a_label_naming_no_entry_is_an_error(tmp_path: Path) -> None:
    bad = tmp_path / "q.yaml"
    bad.write_text("questions:\n  - {q: 'what is an eval', relevant: [no-such-entry]}\n")
    with pytest.raises(PlaybookError, match="unknown: \\['no-such-entry'\\]"):
        load_questions(bad, set(default_playbook().by_id))
