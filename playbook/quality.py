"""The search measured as a retrieval system: recall@k and MRR over labelled questions."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import Any

import yaml

from playbook.entries import PlaybookError
from playbook.search import KeywordOverlap, Playbook

K = 3


@dataclass(frozen=True)
class Question:
    text: str
    relevant: tuple[str, ...]
    step: str | None = None


@dataclass
class Metrics:
    name: str
    questions: int
    recall_at_k: float
    mrr: float
    median_ms: float
    misses: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"questions": self.questions, f"recall_at_{K}": round(self.recall_at_k, 4),
                "mrr": round(self.mrr, 4), "median_ms": round(self.median_ms, 3)}


def load_questions(path: Path, known: set[str]) -> tuple[list[Question], list[str]]:
    """The labelled questions and the off-topic ones; a label naming no entry is an error."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    questions = []
    for i, q in enumerate([*(data.get("questions") or []), *(data.get("held_out") or [])]):
        unknown = [r for r in q.get("relevant", []) if r not in known]
        if not q.get("q") or not q.get("relevant") or unknown:
            raise PlaybookError(f"{path.name}: question {i + 1} needs `q` and `relevant` "
                                f"entry ids that exist (unknown: {unknown})")
        questions.append(Question(q["q"], tuple(q["relevant"]), q.get("step")))
    return questions, list(data.get("off_topic") or [])


def measure(name: str, rank: Callable[[Question], Sequence[str]],
            questions: Sequence[Question]) -> Metrics:
    """recall@k: the share of questions with an entry that answers them in the top k.
    MRR: the mean of 1/rank of the first such entry (0 when none is in the top k)."""
    hits, reciprocal, times, misses = 0, 0.0, [], []
    for q in questions:
        start = time.perf_counter()
        ids = list(rank(q))[:K]
        times.append((time.perf_counter() - start) * 1000)
        rank_of = next((i + 1 for i, e in enumerate(ids) if e in q.relevant), None)
        if rank_of is None:
            misses.append(q.text)
        else:
            hits += 1
            reciprocal += 1 / rank_of
    n = len(questions) or 1
    return Metrics(name, len(questions), hits / n, reciprocal / n, median(times or [0.0]),
                   misses)


def bm25_metrics(playbook: Playbook, questions: Sequence[Question]) -> Metrics:
    return measure("bm25s with step boost", lambda q: [
        h.entry.id for h in playbook.search(q.text, step=q.step, limit=K)], questions)


def baseline_metrics(playbook: Playbook, questions: Sequence[Question]) -> Metrics:
    overlap = KeywordOverlap(playbook.entries)
    return measure("keyword overlap", lambda q: [
        e.id for e in overlap.search(q.text, limit=K)], questions)
