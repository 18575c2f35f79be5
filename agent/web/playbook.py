"""`/api/playbook`: the coaching playbook for the chat page's side panel, signed-in only.

Entries are Markdown written by us; they are rendered here with markdown-it-py with raw HTML
disabled (an HTML tag in an entry comes out as text), so the page can insert the result.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from markdown_it import MarkdownIt
from pydantic import BaseModel

from agent.web.auth import caller
from agent.web.schemas import ERRORS
from memory.accounts import Caller
from playbook import Entry, default_playbook

router = APIRouter(responses=ERRORS, tags=["playbook"])
Me = Annotated[Caller, Depends(caller)]
STEP_PATTERN = "^(problem|build|deploy|harden|postmortem|repeat|done)$"
# "commonmark" with html off: no raw HTML passes through; unsafe link schemes
# (javascript:, vbscript:, file:, most data:) are refused by markdown-it's validateLink.
MARKDOWN = MarkdownIt("commonmark", {"html": False})


class PlaybookEntry(BaseModel):
    id: str
    title: str
    steps: list[str]
    capabilities: list[str]
    try_this: str
    html: str
    score: float | None = None


class PlaybookEntries(BaseModel):
    query: str | None
    step: str | None
    entries: list[PlaybookEntry]


@cache
def rendered(entry_id: str) -> str:
    return MARKDOWN.render(default_playbook().by_id[entry_id].body)


def _out(entry: Entry, score: float | None = None) -> PlaybookEntry:
    return PlaybookEntry(id=entry.id, title=entry.title, steps=list(entry.steps),
                         capabilities=list(entry.capabilities), try_this=entry.try_this,
                         html=rendered(entry.id), score=round(score, 3) if score else None)


@router.get("/api/playbook", response_model=PlaybookEntries)
def list_playbook(me: Me,
                  step: Annotated[str | None, Query(pattern=STEP_PATTERN)] = None,
                  q: Annotated[str | None, Query(max_length=500)] = None,
                  limit: Annotated[int, Query(ge=1, le=100)] = 5) -> PlaybookEntries:
    """The entries for a step (`step`), or the best matches for a question (`q`, boosted for
    `step`), each with its Markdown body rendered as HTML."""
    book = default_playbook()
    where = step if step != "done" else None
    if q and q.strip():
        hits = book.search(q, step=where, limit=limit)
        return PlaybookEntries(query=q, step=step,
                               entries=[_out(h.entry, h.score) for h in hits])
    return PlaybookEntries(query=None, step=step,
                           entries=[_out(e) for e in book.for_step(where)[:limit]])


@router.get("/api/playbook/{entry_id}", response_model=PlaybookEntry)
def playbook_entry(me: Me, entry_id: Annotated[str, Path(max_length=100)]) -> PlaybookEntry:
    """One entry by its id."""
    entry = default_playbook().by_id.get(entry_id)
    if entry is None:
        raise HTTPException(404, "no playbook entry has that id")
    return _out(entry)
