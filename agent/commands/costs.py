"""`coach costs`: what the coach's own model calls cost."""

from __future__ import annotations

import csv
import json
import sys
from datetime import UTC, datetime
from typing import Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from agent.commands.common import json_option, open_store
from agent.commands.formatting import money, short_money
from agent.settings import Settings
from telemetry.costs import ESTIMATED, GROUPS, TOKENS, cost_report


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{value!r} is not a date like 2026-11-01") from exc
    # A bare date means midnight UTC; a time with an offset keeps its offset.
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def costs(ctx: typer.Context,
          by: str = typer.Option("model", "--by", help="|".join(GROUPS)),
          since: str | None = typer.Option(None, "--since", help="From this date (YYYY-MM-DD)."),
          all_users: bool = typer.Option(False, "--all-users",
                                         help="Every learner in this database, not only you."),
          as_json: bool = json_option(),
          as_csv: bool = typer.Option(False, "--csv", help="Print CSV.")) -> None:
    """Tokens and money spent by the coach itself, with what prompt caching saved."""
    if by not in GROUPS:
        raise typer.BadParameter(f"choose one of {', '.join(GROUPS)}", param_hint="--by")
    settings: Settings = ctx.obj
    with open_store(settings) as (engine, user_id):
        report = cost_report(engine, by=by, user_id=None if all_users else user_id,
                             since=_since(since))
    if as_json:
        typer.echo(json.dumps(report))
        return
    columns = ["key", "calls", *TOKENS, "cost_usd", "unknown_cost_calls", "cache_savings_usd",
               "estimated_calls", *ESTIMATED]
    if as_csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(report["rows"])
        return
    console = Console()
    console.print(_table(report, by))
    console.print(f"total {money(report['total_usd'])} over {report['calls']} calls; "
                  f"cache hit share {report['cache_hit_share']:.0%}; caching saved "
                  f"{money(report['cache_savings_usd'])}"
                  + (f"; {report['unknown_cost_calls']} calls of unknown cost"
                     if report["unknown_cost_calls"] else ""))
    if report["estimated_calls"]:
        console.print(f"~ {report['estimated_calls']} offline calls: about "
                      f"{report['estimated_input_tokens']:,} input and "
                      f"{report['estimated_output_tokens']:,} output tokens, estimated (the "
                      "offline coach has no real token usage and costs nothing; not counted "
                      "above).")


def _table(report: dict[str, Any], by: str) -> Table:
    """Fits 80 columns: no outer border, keys and amounts never broken across lines."""
    table = Table(title=f"coach costs by {by}", box=box.SIMPLE_HEAD, show_edge=False,
                  pad_edge=False)
    for column in ("key", "calls", "input", "output", "cache read", "cache write", "cost",
                   "saved"):
        table.add_column(column, justify="left" if column == "key" else "right",
                         no_wrap=column in ("key", "cost", "saved"), overflow="fold")
    for row in report["rows"]:
        cost = short_money(row["cost_usd"])
        if row["unknown_cost_calls"] and row["cost_usd"] is not None:
            cost += f" + {row['unknown_cost_calls']} unknown"
        tokens = [f"{row[t]:,}" for t in TOKENS]
        if row["estimated_calls"] == row["calls"]:
            # Offline only: "~" marks the coach's estimates (see the line below the table).
            tokens = [f"~{row['estimated_input_tokens']:,}",
                      f"~{row['estimated_output_tokens']:,}", "-", "-"]
        table.add_row(row["key"], str(row["calls"]), *tokens, cost,
                      short_money(row["cache_savings_usd"]))
    return table
