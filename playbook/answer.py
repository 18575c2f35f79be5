"""The offline coach's answer to a learner's question: the best entry, shortened to the
point, placed against the learner's step, with its source named and its "try this"."""

from __future__ import annotations

import re
from collections.abc import Iterable

from playbook.entries import STEPS, Entry
from playbook.search import Playbook, default_playbook
from playbook.text import terms

# Below this share of the question's weight, the best entry is a guess, not an answer.
MIN_RELEVANCE = 0.35
MAX_SENTENCES = 3
SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"“(`])")


def step_label(step: str) -> str:
    return f"step {STEPS.index(step) + 1} ({step})" if step in STEPS else step


def best_paragraph(entry: Entry, question: str) -> str:
    """The paragraph sharing most words with the question (the first one on a tie),
    cut to a few sentences."""
    wanted = set(terms(question))
    paragraphs = entry.paragraphs()
    best = max(paragraphs, key=lambda p: (len(wanted & set(terms(p))), -paragraphs.index(p)))
    sentences = SENTENCE.split(best)
    return " ".join(sentences[:MAX_SENTENCES])


def where_it_fits(entry: Entry, step: str | None) -> str:
    """One line relating the entry to where the learner is."""
    if step is None or step not in STEPS or step in entry.steps:
        return ""
    later = [s for s in entry.steps if STEPS.index(s) > STEPS.index(step)]
    if later:
        return (f"You're at {step_label(step)}; this matters most at {step_label(later[0])}, "
                "so note it for then.")
    return f"This belongs to {step_label(entry.steps[0])}, which you have passed: worth a " \
           "look back if it applies to your project."


def answer_question(text: str, step: str | None = None, capabilities: Iterable[str] = (),
                    playbook: Playbook | None = None) -> str | None:
    """A short answer from the best playbook entry, or an honest "not in the playbook" with
    the two closest titles; None for a message with no words to search."""
    book = playbook or default_playbook()
    if not book.query_terms(text):
        return None
    hits = book.search(text, step=step, capabilities=capabilities, limit=3)
    if not hits or book.relevance(text, hits[0].entry) < MIN_RELEVANCE:
        closest = [h.entry.title for h in hits[:2]] or \
            [e.title for e in book.for_step(step)[:2]]
        return ("I don't have a playbook entry that answers that, and I'd rather not guess. "
                "The closest ones are " + " and ".join(f"“{t}”" for t in closest) +
                "; ask about either, or `coach playbook QUERY` searches it all.")
    entry = hits[0].entry
    parts = [f"From the playbook, “{entry.title}”:", best_paragraph(entry, text),
             where_it_fits(entry, step), f"Try this: {entry.try_this}"]
    related = [h.entry.title for h in hits[1:] if h.score >= hits[0].score * 0.6]
    if related:
        parts.append("Related: " + "; ".join(f"“{t}”" for t in related) + ".")
    return "\n\n".join(p for p in parts if p)
