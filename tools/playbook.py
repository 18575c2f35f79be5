"""`search_playbook`: the coaching playbook, for the model to ground its advice in."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from memory.vocabulary import StepId
from playbook import default_playbook
from tools.base import Args, Tool, ToolContext


class SearchPlaybookArgs(Args):
    query: str = Field(min_length=2, max_length=500,
                       description="The learner's question or the topic, in plain words.")
    step: StepId | None = Field(None, description="The learner's current step; entries for it "
                                                  "rank higher.")
    limit: int = Field(3, ge=1, le=5, description="How many entries to return.")


def search_playbook(ctx: ToolContext, args: SearchPlaybookArgs) -> dict[str, Any]:
    """Search the coaching playbook: curated, current advice on every step of building an AI
    engineering portfolio (choosing a problem, MVP scope, deployment options and costs,
    evals and graders, CI gates, tracing tools, cost tracking, retrieval, tool use and
    agents, post-mortems, the next project, common mistakes, what hiring managers look for).
    Returns the best entries, best first, each with its id, title, text and one concrete
    "try this" action. Ground advice in these entries and name the entry you used."""
    book = default_playbook()
    hits = book.search(args.query, step=args.step, limit=args.limit)
    return {"query": args.query,
            "entries": [{"id": h.entry.id, "title": h.entry.title, "steps": list(h.entry.steps),
                         "text": h.entry.body, "try_this": h.entry.try_this,
                         "relevance": round(book.relevance(args.query, h.entry), 2)}
                        for h in hits],
            "note": None if hits else "No entry matches; say so rather than guess."}


PLAYBOOK_TOOLS = [Tool("search_playbook", SearchPlaybookArgs, search_playbook)]
