"""`coach traces list|show` and `coach prune`: the local span store from the terminal."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.tree import Tree

from agent.commands.common import (
    cursor_checked,
    cursor_option,
    json_option,
    more_line,
    open_engine_for,
    open_store,
)
from agent.commands.formatting import money
from agent.errors import CoachError
from agent.settings import Settings
from telemetry.ingest import prune_received
from telemetry.traces import TraceNotFound, prune_spans, totals, trace_page, trace_spans

app = typer.Typer(help="Traces of your coaching turns (kept in the local database).",
                  no_args_is_help=True)
LIMIT = 20  # traces a page of `coach traces list`


def _ms(value: float) -> str:
    return f"{value / 1000:.2f} s" if value >= 1000 else f"{value:.1f} ms"


@app.command("list")
def list_traces(ctx: typer.Context,
                limit: int = typer.Option(LIMIT, "--limit", min=1, max=1000,
                                          help="How many traces a page."),
                cursor: str | None = cursor_option(),
                as_json: bool = json_option()) -> None:
    """Your recent turns: time, duration, thread, model calls, tokens, cost, errors."""
    settings: Settings = ctx.obj
    with open_store(settings) as (engine, user_id), cursor_checked():
        page = trace_page(engine, user_id, limit, cursor)
    if as_json:  # the shape GET /api/traces answers
        typer.echo(json.dumps({"traces": page.traces, "next_cursor": page.next_cursor}))
        return
    console = Console()
    if not page.traces:
        console.print("No older traces." if cursor else
                      "No traces yet: every `coach chat` turn records one.")
        return
    # Two lines per trace rather than a table: a full trace id leaves no room for columns.
    console.print(f"[bold]{escape(settings.user)}'s {'older' if cursor else 'recent'} "
                  "traces[/bold] (newest first, UTC)")
    for t in page.traces:
        calls = f"{t['model_calls']} model call" + ("" if t["model_calls"] == 1 else "s")
        console.print(f"[cyan]{t['trace_id']}[/cyan]  {t['start_time'][:16].replace('T', ' ')}"
                      f"  {_ms(t['duration_ms'])}  thread {escape(t['thread_id'] or '-')}",
                      soft_wrap=True)
        console.print(f"    {calls} · {_tokens(t)} · {money(t['cost_usd'])}"
                      + (" · [red]error[/red]" if t["error"] else ""), soft_wrap=True)
    console.print("[dim]coach traces show TRACE_ID for the tree of one turn[/dim]")
    more = more_line("coach traces list" + (f" --limit {limit}" if limit != LIMIT else ""),
                     page.next_cursor)
    if more:
        console.print(more, soft_wrap=True)


def _tokens(t: dict[str, Any]) -> str:
    """Real tokens, or the offline coach's estimate marked as one (`~`, "estimated")."""
    if not (t["input_tokens"] or t["output_tokens"]) and t.get("estimated_input_tokens"):
        return (f"~{t['estimated_input_tokens']:,} in / ~{t['estimated_output_tokens']:,} out "
                "tokens (estimated)")
    return f"{t['input_tokens']:,} in / {t['output_tokens']:,} out tokens"


def _label(span: dict[str, Any]) -> str:
    a = span["attributes"]
    parts = [f"[bold]{escape(span['name'])}[/bold]", f"[cyan]{_ms(span['duration_ms'])}[/cyan]"]
    if "gen_ai.usage.input_tokens" in a:  # a model call that got an answer
        parts.append(f"{a['gen_ai.usage.input_tokens']:,} in / "
                     f"{a.get('gen_ai.usage.output_tokens', 0):,} out tokens")
        parts.append(money(None if a.get("coach.cost.unknown")
                            else a.get("llm.cost.total", 0.0)))
    elif "coach.usage.estimated.input_tokens" in a:  # the offline coach: estimates, no cost
        parts.append(f"~{a['coach.usage.estimated.input_tokens']:,} in / "
                     f"~{a.get('coach.usage.estimated.output_tokens', 0):,} out tokens "
                     "(estimated)")
        parts.append(money(a.get("llm.cost.total", 0.0)))
    if "coach.tool.outcome" in a:
        parts.append(str(a["coach.tool.outcome"]))
    if "coach.gate.decision" in a:
        parts.append(f"gate {a['coach.gate.decision']} → {a.get('coach.gate.step', '?')}")
    if span["status"] == "error":
        reason = ": ".join(str(r) for r in (a.get("error.type"), span["status_message"]) if r)
        parts.append(f"[red]error {escape(reason)}[/red]")
    return " · ".join(parts)


def render(spans: list[dict[str, Any]]) -> Tree:
    children: dict[str | None, list[dict[str, Any]]] = defaultdict(list)
    ids = {s["span_id"] for s in spans}
    for s in spans:
        # A span whose parent was not stored (pruned, or from elsewhere) hangs off the root.
        children[s["parent_id"] if s["parent_id"] in ids else None].append(s)
    roots = children.pop(None, [])
    root = roots[0]
    a = root["attributes"]
    tree = Tree(f"{_label(root)}\n[dim]trace {root['trace_id']} · thread "
                f"{a.get('gen_ai.conversation.id', '-')} · {root['start_time'][:19]}[/dim]")

    def add(node: Tree, span_id: str) -> None:
        for child in children.get(span_id, []):
            add(node.add(_label(child)), child["span_id"])

    add(tree, root["span_id"])
    for orphan in roots[1:]:
        add(tree.add(_label(orphan)), orphan["span_id"])
    return tree


@app.command("show")
def show_trace(ctx: typer.Context, trace_id: str = typer.Argument(..., metavar="TRACE_ID"),
               as_json: bool = json_option("Print the spans as JSON.")) -> None:
    """One turn as a tree of spans, with durations, tokens, costs and errors."""
    settings: Settings = ctx.obj
    try:
        with open_store(settings) as (engine, user_id):
            spans = trace_spans(engine, user_id, trace_id)
    except TraceNotFound as exc:
        raise CoachError(str(exc)) from exc
    if as_json:
        # The shape GET /api/traces/{trace_id} answers.
        typer.echo(json.dumps({"trace_id": trace_id.lower(), **totals(spans), "spans": spans}))
        return
    Console().print(render(spans))


def prune(ctx: typer.Context,
          keep_days: int = typer.Option(..., "--keep-days", min=0,
                                        help="Keep spans from the last N days."),
          as_json: bool = json_option()) -> None:
    """Delete stored trace spans older than N days (every learner's in this database), the
    coach's own and those received from learners' apps."""
    settings: Settings = ctx.obj
    with open_engine_for(settings) as engine:
        deleted = prune_spans(engine, keep_days)
        received = prune_received(engine, keep_days)
    if as_json:
        typer.echo(json.dumps({"deleted_spans": deleted, "deleted_received_spans": received,
                               "keep_days": keep_days}))
        return
    typer.echo(f"deleted {deleted:,} spans older than {keep_days} days"
               + (f" and {received:,} received from your apps" if received else ""))
