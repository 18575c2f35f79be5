"""`coach playbook [QUERY] [--step STEP] [--json]`: list, search or read the playbook."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.console import Console
from rich.markdown import Markdown
from rich.table import Table

from agent.commands.common import json_option
from playbook import STEPS, Entry, default_playbook

SHOWN = 5


def _entry_json(entry: Entry, score: float | None = None) -> dict[str, Any]:
    out = entry.as_dict()
    if score is not None:
        out["score"] = round(score, 3)
    return out


def _print_entry(console: Console, entry: Entry) -> None:
    console.print(f"[bold]{entry.title}[/bold]  [dim]{entry.id} · steps: "
                  f"{', '.join(entry.steps)}[/dim]")
    # rich renders Markdown as terminal text; nothing in an entry is run or linked.
    console.print(Markdown(entry.body))
    console.print(f"\n[bold]Try this:[/bold] {entry.try_this}\n")


def playbook(
    query: str | None = typer.Argument(None, help="A question or words to search for, or an "
                                                  "entry id to read in full."),
    step: str | None = typer.Option(None, "--step", help=f"Only entries for (or, with a "
                                    f"query, boosted for) one step: {', '.join(STEPS)}."),
    as_json: bool = json_option(),
) -> None:
    """List or search the coaching playbook."""
    if step is not None and step not in STEPS:
        raise typer.BadParameter(f"{step!r} is not a step; steps are {', '.join(STEPS)}",
                                 param_hint="--step")
    book = default_playbook()
    console = Console()
    if query and query.strip() in book.by_id:
        entry = book.by_id[query.strip()]
        if as_json:
            typer.echo(json.dumps({"query": query, "step": step, "entries": [_entry_json(entry)]}))
        else:
            _print_entry(console, entry)
        return
    if query:
        hits = book.search(query, step=step, limit=SHOWN)
        if as_json:
            typer.echo(json.dumps({"query": query, "step": step,
                                   "entries": [_entry_json(h.entry, h.score) for h in hits]}))
            return
        if not hits:
            console.print(f"Nothing in the playbook matches “{query}”. `coach playbook` "
                          "lists every entry.")
            return
        _print_entry(console, hits[0].entry)
        if len(hits) > 1:
            console.print("[bold]Also:[/bold]")
            for h in hits[1:]:
                console.print(f"  {h.entry.title}  [dim]({h.entry.id})[/dim]")
        return
    entries = book.for_step(step)
    if as_json:
        typer.echo(json.dumps({"query": None, "step": step,
                               "entries": [_entry_json(e) for e in entries]}))
        return
    table = Table(title=f"The playbook: {len(entries)} entries"
                        + (f" for step {STEPS.index(step) + 1} ({step})" if step else ""))
    for column in ("id", "title", "steps"):
        table.add_column(column)
    for e in entries:
        table.add_row(e.id, e.title, ", ".join(e.steps))
    console.print(table)
    console.print("`coach playbook ID` reads one; `coach playbook \"your question\"` searches.")
