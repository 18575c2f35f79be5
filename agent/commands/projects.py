"""`coach projects list|show|ingest-token|import-traces`."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy import Engine
from sqlmodel import select

from agent.commands.common import cursor_checked, cursor_option, json_option, more_line, open_store
from agent.errors import CoachError
from agent.settings import Settings
from agent.steps import GUIDES
from memory.models import Project
from memory.store import session_scope
from telemetry.ingest import import_file, issue_token
from tools import ToolContext
from tools.projects import portfolio_page, project_view

app = typer.Typer(help="Your portfolio projects.", no_args_is_help=True)


# Bookkeeping every record carries; the human view says "verified"/"stated" instead.
HIDDEN_KEYS = {"ok", "verified", "checked_at"}


def _value(value: object) -> str:
    if isinstance(value, list):
        return ", ".join(_value(v) for v in value) if value else "none"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_value(v)}" for k, v in value.items()) or "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def evidence_lines(details: dict[str, object]) -> list[str]:
    """One `key: value` line per field, whole (no cut-off JSON); `--json` has the raw record."""
    return [f"{key.replace('_', ' ')}: {_value(value)}" for key, value in details.items()
            if key not in HIDDEN_KEYS and value not in (None, "", [], {})]


@app.command("list")
def list_projects(ctx: typer.Context,
                  limit: int | None = typer.Option(None, "--limit", min=1, max=1000,
                                                   help="How many projects a page "
                                                        "(default: every one)."),
                  cursor: str | None = cursor_option(),
                  as_json: bool = json_option()) -> None:
    """Every project with its step and difficulty, in the order you started them."""
    settings: Settings = ctx.obj
    with open_store(settings) as (engine, user_id), cursor_checked():
        portfolio = portfolio_page(ToolContext(engine, user_id), limit, cursor)
    if as_json:
        typer.echo(json.dumps(portfolio, default=str))
        return
    console = Console()
    if not portfolio["projects"]:
        console.print("No more projects." if cursor else
                      "No projects yet. Start one with [bold]coach chat[/bold].")
        return
    table = Table(title=f"{settings.user}'s portfolio: {portfolio['done']} done "
                        f"({portfolio['readiness']})")
    for column in ("id", "title", "step", "difficulty", "evidence"):
        table.add_column(column)
    for p in portfolio["projects"]:
        step = GUIDES[p["step"]]
        table.add_row(str(p["id"]), p["title"], f"{step.number}/6 {p['step']}"
                      if p["step"] != "done" else "done", str(p["difficulty"]),
                      ", ".join(p["evidence"]) or "-")
    console.print(table)
    more = more_line(f"coach projects list --limit {limit}", portfolio["next_cursor"])
    if more:
        console.print(more, soft_wrap=True)


@app.command("show")
def show_project(ctx: typer.Context, project_id: int = typer.Argument(..., metavar="ID"),
                 as_json: bool = json_option()) -> None:
    """One project with its evidence, lessons and what its gate still needs."""
    settings: Settings = ctx.obj
    with open_store(settings) as (engine, user_id), session_scope(engine) as s:
        project = s.exec(select(Project).where(Project.id == project_id,
                                               Project.user_id == user_id)).first()
        if project is None:
            raise CoachError(f"no project {project_id} in {settings.user}'s portfolio")
        view = project_view(s, project)
    if as_json:
        typer.echo(json.dumps(view, default=str))
        return
    console = Console()
    console.print(f"[bold]#{view['id']} {view['title']}[/bold]  step: {view['step']}  "
                  f"difficulty: {view['difficulty']} ({', '.join(view['capabilities']) or '-'})")
    for key in ("problem", "audience", "personal_context", "success_criteria", "repo",
                "usage_note"):
        if view[key]:
            console.print(f"[cyan]{key.replace('_', ' ')}:[/cyan] {view[key]}")
    if view["mvp_scope"]:
        console.print("[cyan]MVP:[/cyan] " + "; ".join(view["mvp_scope"]))
    for kind, details in view["evidence"].items():
        # The readable sentence with its strength first, then every field on its own line.
        label = details.get("strength") or ("verified" if details.get("verified") else "stated")
        sentence = str(details.get("summary", "")).partition(": ")[2]
        console.print(f"[green]evidence {kind}[/green] ({label}): {escape(sentence)}",
                      highlight=False)
        for line in evidence_lines(details):
            console.print(f"  {line}", markup=False)
    for lesson in view["lessons"]:
        console.print(f"[magenta]lesson ({lesson['kind']}):[/magenta] {lesson['text']}")
    gate = view["gate"]
    if gate["missing"]:
        console.print(f"[yellow]{gate['step']} gate still needs:[/yellow]")
        for m in gate["missing"]:
            console.print(f"  - {m['message']}")


def _own_project_id(engine: Engine, user_id: int, settings: Settings, project_id: int) -> int:
    with session_scope(engine) as s:
        project = s.exec(select(Project).where(Project.id == project_id,
                                               Project.user_id == user_id)).first()
        if project is None:
            raise CoachError(f"no project {project_id} in {settings.user}'s portfolio")
    return project_id


@app.command("ingest-token")
def ingest_token(ctx: typer.Context, project_id: int = typer.Argument(..., metavar="PROJECT_ID"),
                 url: str = typer.Option("http://127.0.0.1:8000", "--url",
                                         help="Where your app reaches `coach serve`."),
                 as_json: bool = json_option()) -> None:
    """A new ingest token for the project's own app's traces (the old one stops working)."""
    settings: Settings = ctx.obj
    with open_store(settings) as (engine, user_id):
        token = issue_token(engine, _own_project_id(engine, user_id, settings, project_id))
    if as_json:
        typer.echo(json.dumps({"project_id": project_id, "token": token, "path": "/v1/traces"}))
        return
    typer.echo(f"# Paste into your app's environment (OTLP/HTTP, protobuf or JSON):\n"
               f"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT={url.rstrip('/')}/v1/traces\n"
               f"OTEL_EXPORTER_OTLP_HEADERS=Authorization=Bearer%20{token}")


@app.command("import-traces")
def import_traces(ctx: typer.Context,
                  project_id: int = typer.Argument(..., metavar="PROJECT_ID"),
                  file: Path = typer.Argument(..., metavar="FILE", exists=True, dir_okay=False,
                                              help="The Collector file exporter's OTLP JSON "
                                                   "lines."),
                  as_json: bool = json_option()) -> None:
    """Import the OpenTelemetry Collector's file-exporter output: the offline path to the
    same evidence as `POST /v1/traces`."""
    settings: Settings = ctx.obj
    with open_store(settings) as (engine, user_id):
        pid = _own_project_id(engine, user_id, settings, project_id)
        with file.open(encoding="utf-8", errors="replace") as lines:
            done, bad = import_file(engine, pid, lines)
    if done.accepted == 0 and bad:
        raise CoachError(f"{file}: no line is an OTLP JSON trace export ({bad} unreadable)")
    result = {"project_id": project_id, "spans": done.accepted, "rejected_spans": done.rejected,
              "unreadable_lines": bad}
    if as_json:
        typer.echo(json.dumps(result))
        return
    typer.echo(f"imported {done.accepted:,} spans into project {project_id}"
               + (f"; {done.rejected} spans rejected" if done.rejected else "")
               + (f"; {bad} lines unreadable" if bad else ""))
