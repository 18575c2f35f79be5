"""`coach projects list|show`."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table
from sqlmodel import select

from agent.commands.common import json_option, open_store
from agent.errors import CoachError
from agent.settings import Settings
from agent.steps import GUIDES
from memory.models import Project
from memory.store import session_scope
from tools import ToolContext
from tools.projects import NoArgs, get_portfolio, project_view

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
                  as_json: bool = json_option()) -> None:
    """Every project with its step and difficulty."""
    settings: Settings = ctx.obj
    with open_store(settings) as (engine, user_id):
        portfolio = get_portfolio(ToolContext(engine, user_id), NoArgs())
    if as_json:
        typer.echo(json.dumps(portfolio, default=str))
        return
    console = Console()
    if not portfolio["projects"]:
        console.print("No projects yet. Start one with [bold]coach chat[/bold].")
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
        label = "verified" if details.get("verified") else "stated"
        console.print(f"[green]evidence {kind}[/green] ({label}):")
        for line in evidence_lines(details):
            console.print(f"  {line}", markup=False)
    for lesson in view["lessons"]:
        console.print(f"[magenta]lesson ({lesson['kind']}):[/magenta] {lesson['text']}")
    gate = view["gate"]
    if gate["missing"]:
        console.print(f"[yellow]{gate['step']} gate still needs:[/yellow]")
        for m in gate["missing"]:
            console.print(f"  - {m['message']}")
