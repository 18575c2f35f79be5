"""`coach portfolio export|publish|share|report` and `coach recheck`."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from agent.commands.common import json_option, open_store
from agent.portfolio import document, readiness, render, visibility
from agent.portfolio.recheck import recheck as run_recheck
from agent.settings import Settings
from memory.store import session_scope
from tools.deployment import AddressPolicy

FIELDS_HELP = ("Comma-separated fields (default: all): " + ", ".join(visibility.FIELDS))
app = typer.Typer(help="The portfolio you send with an application: publish, export, share.",
                  no_args_is_help=True)


@app.command("publish")
def publish(ctx: typer.Context, project_id: int = typer.Argument(..., metavar="PROJECT_ID"),
            fields: list[str] = typer.Option(
                [], "--fields", help=FIELDS_HELP),
            lesson: list[int] = typer.Option(
                [], "--lesson", metavar="LESSON_ID",
                help="Publish (or hide) one lesson; repeat for more. Ids are listed below."),
            unpublish: bool = typer.Option(False, "--unpublish",
                                           help="Hide these fields, or the whole project."),
            as_json: bool = json_option()) -> None:
    """Make a project (or some of its fields or lessons) public. Nothing is public until
    you do."""
    settings: Settings = ctx.obj
    with open_store(settings) as (engine, user_id):
        chosen = visibility.lesson_fields(engine, user_id, project_id, lesson)
        named = visibility.parse_fields(fields) if fields else []
        if unpublish:
            hide = named + chosen if fields or chosen else None
            public = visibility.unpublish(engine, user_id, project_id, hide)
        else:
            # With only lessons named, publish just those (and the project's title).
            public = visibility.publish(engine, user_id, project_id,
                                        chosen + (named if fields or not chosen
                                                  else []) or list(visibility.FIELDS))
        lessons = visibility.lessons_of(engine, user_id, project_id)
    if as_json:
        typer.echo(json.dumps({"project_id": project_id, "public": public,
                               "lessons": lessons}))
        return
    if public:
        typer.echo(f"Project {project_id} is public with: {', '.join(public)}")
    else:
        typer.echo(f"Project {project_id} is private.")
    for item in lessons:
        mark = "public " if item["public"] else "private"
        typer.echo(f"  lesson {item['id']} [{mark}] {item['kind']}: {item['text']}")


@app.command("export")
def export(ctx: typer.Context,
           out: Path = typer.Option(..., "--out", help="Folder to write into."),
           fmt: str = typer.Option("html", "--format", help="html, md or json."),
           as_json: bool = json_option()) -> None:
    """Write your published portfolio as a static site, Markdown or JSON."""
    settings: Settings = ctx.obj
    if fmt not in render.FORMATS:
        raise typer.BadParameter(f"choose one of {', '.join(render.FORMATS)}",
                                 param_hint="--format")
    with open_store(settings) as (engine, user_id), session_scope(engine) as s:
        doc = document.build(s, user_id, settings.user)
    names = render.write(doc, out, fmt)
    if as_json:
        typer.echo(json.dumps({"out": str(out), "format": fmt, "files": names,
                               "projects": [p["id"] for p in doc["projects"]]}))
        return
    typer.echo(f"Wrote {len(names)} file(s) to {out} ({len(doc['projects'])} published "
               "project(s))." + ("" if doc["projects"] else
                                 " Nothing is published yet: `coach portfolio publish ID`."))


@app.command("share")
def share(ctx: typer.Context,
          revoke: bool = typer.Option(False, "--revoke", help="Stop the link working."),
          base_url: str = typer.Option("http://127.0.0.1:8000", "--base-url",
                                       help="Where `coach serve` is reachable."),
          as_json: bool = json_option()) -> None:
    """A read-only link to your published portfolio (served by `coach serve` at /p/SLUG).
    It is shown once; running this again makes a new link and the old one stops working."""
    settings: Settings = ctx.obj
    with open_store(settings) as (engine, user_id):
        if revoke:
            revoked = visibility.revoke_share(engine, user_id)
            if as_json:
                typer.echo(json.dumps({"revoked": revoked}))
            else:
                typer.echo("Your share link no longer works." if revoked
                           else "You had no share link.")
            return
        slug, replaced = visibility.create_share(engine, user_id)
    path = f"/p/{slug}"
    url = base_url.rstrip("/") + path
    if as_json:
        typer.echo(json.dumps({"slug": slug, "path": path, "url": url, "replaced": replaced}))
        return
    typer.echo(url)
    typer.echo("Anyone with this link can read your published fields (no sign-in). "
               + ("Your previous link stopped working. " if replaced else "")
               + "It is stored hashed and shown only now.", err=True)


@app.command("report")
def report(ctx: typer.Context, as_json: bool = json_option()) -> None:
    """How ready your portfolio is: the bar, difficulty, the four pillars, common mistakes,
    and the capability your next project should add."""
    settings: Settings = ctx.obj
    with open_store(settings) as (engine, user_id), session_scope(engine) as s:
        r = readiness.report(s, user_id)
    if as_json:
        typer.echo(json.dumps(r, default=str))
        return
    for line in readiness.report_lines(r):
        typer.echo(line)


def recheck(ctx: typer.Context,
            every: bool = typer.Option(False, "--all", help="Every learner's deployments "
                                       "(what `coach serve` does on its schedule)."),
            as_json: bool = json_option()) -> None:
    """Fetch your recorded deployments again (the deploy gate's check, paced per host) and
    keep the history: the portfolio shows "live as of" or "down since"."""
    settings: Settings = ctx.obj
    with open_store(settings) as (engine, user_id):
        summary = run_recheck(engine, user_id=None if every else user_id, trigger="command",
                              policy=AddressPolicy(allow_private=settings.allow_private_urls))
    if as_json:
        typer.echo(json.dumps(summary, default=str))
        return
    if not summary["results"]:
        typer.echo("No recorded deployments to re-check.")
    for r in summary["results"]:
        mark = "up  " if r["ok"] else "DOWN"
        typer.echo(f"{mark} #{r['project_id']} {r['url']} — {r['reason']} ({r['status']})")
    if summary["results"]:
        typer.echo(f"{summary['checked']} checked, {summary['down']} down.")
