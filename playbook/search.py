"""Ranked search over the playbook: BM25 (bm25s) with the learner's step and capabilities
as a boost, and the plain keyword-overlap ranking it is measured against."""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import bm25s
import numpy as np

from playbook.entries import ENTRIES_DIR, Entry, load_entries
from playbook.text import Speller, stem, terms, words

# How much an entry's match with the learner's situation multiplies its text score. Small
# enough that a clearly better text match still wins; big enough to break near-ties.
STEP_BOOST = 0.35
CAPABILITY_BOOST = 0.15
# Titles and keywords say what an entry is about, so they count more than body text.
TITLE_WEIGHT = 3
KEYWORD_WEIGHT = 2


@dataclass(frozen=True)
class Hit:
    entry: Entry
    score: float

    def as_dict(self) -> dict[str, object]:
        return {"id": self.entry.id, "title": self.entry.title, "score": round(self.score, 3)}


def entry_text(entry: Entry) -> list[str]:
    """The words an entry is indexed under, weighted by where they appear."""
    return (terms(entry.title) * TITLE_WEIGHT + terms(" ".join(entry.keywords)) * KEYWORD_WEIGHT
            + terms(entry.body) + terms(entry.try_this))


class Playbook:
    """The entries and their index, built once per process (a few milliseconds)."""

    def __init__(self, entries: Sequence[Entry]):
        self.entries = list(entries)
        self.by_id = {e.id: e for e in self.entries}
        corpus = [entry_text(e) for e in self.entries]
        self.index = bm25s.BM25()
        self.index.index(corpus, show_progress=False)
        raw = [w for e in self.entries for w in
               words(" ".join([e.title, *e.keywords, e.body, e.try_this]))]
        self.speller = Speller(raw)
        self.entry_terms = [set(doc) for doc in corpus]
        df = Counter(t for doc in self.entry_terms for t in doc)
        n = len(corpus)
        self.idf = {t: math.log(1 + (n - d + 0.5) / (d + 0.5)) for t, d in df.items()}
        self.known_terms = set(df)

    def query_terms(self, query: str) -> list[tuple[str, bool]]:
        """The query's index terms, each with whether it is a typo repair."""
        out = []
        for w in words(query):
            t = stem(w)
            if t in self.known_terms:
                out.append((t, False))
            else:
                fixed = stem(self.speller.correct(w))
                out.append((fixed, fixed != t))
        return out

    def relevance(self, query: str, entry: Entry) -> float:
        """How much of the question an entry covers, 0..1: the rare words it shares with
        the question, over all of the question's words (a word the playbook never uses
        counts fully against it; a repaired typo counts half)."""
        terms_ = self.query_terms(query)
        if not terms_:
            return 0.0
        top_idf = max(self.idf.values())
        have = self.entry_terms[self.entries.index(entry)]
        total = sum(self.idf.get(t, top_idf) for t, _ in terms_)
        got = sum(self.idf[t] * (0.5 if fixed else 1.0) for t, fixed in terms_ if t in have)
        return got / total if total else 0.0

    def search(self, query: str, step: str | None = None,
               capabilities: Iterable[str] = (), limit: int = 3) -> list[Hit]:
        """The best entries for a question, best first; entries sharing no word are left out."""
        q = [t for t, _ in self.query_terms(query) if t in self.known_terms]
        if not q:
            return []
        scores = self.index.get_scores(q)
        caps = set(capabilities)
        boost = np.array([1.0 + (STEP_BOOST if step in e.steps else 0.0)
                          + CAPABILITY_BOOST * len(caps.intersection(e.capabilities))
                          for e in self.entries])
        ranked = scores * boost
        order = np.argsort(-ranked, kind="stable")[:limit]
        return [Hit(self.entries[i], float(ranked[i])) for i in order if ranked[i] > 0]

    def for_step(self, step: str | None) -> list[Entry]:
        """The entries written for one step (all of them when no step is given)."""
        if step is None:
            return list(self.entries)
        # Entries written mainly for this step first, general ones (every step) last.
        return sorted((e for e in self.entries if step in e.steps),
                      key=lambda e: (e.steps.index(step), len(e.steps), e.id))


class KeywordOverlap:
    """The baseline: rank by how many distinct query words an entry contains, nothing else
    (the same words and stop list as the search, but no weights, stems, typos or boosts)."""

    def __init__(self, entries: Sequence[Entry]):
        self.entries = list(entries)
        self.words = [set(words(" ".join([e.title, *e.keywords, e.body, e.try_this])))
                      for e in self.entries]

    def search(self, query: str, limit: int = 3) -> list[Entry]:
        q = set(words(query))
        scored = sorted(((len(q & ws), i) for i, ws in enumerate(self.words)),
                        key=lambda s: (-s[0], s[1]))
        return [self.entries[i] for n, i in scored[:limit] if n > 0]


@functools.cache
def _load(folder: Path) -> Playbook:
    return Playbook(load_entries(folder))


def default_playbook() -> Playbook:
    """The playbook shipped in the package, loaded once per process."""
    return _load(ENTRIES_DIR)
