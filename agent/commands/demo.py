"""`coach demo`: six steps, start to finish, on the embedded default."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.markdown import Markdown
from rich.panel import Panel

from agent.demo import local_app, make_repo, scratch_dir, script
from agent.errors import CoachError
from agent.offline import OfflineCoach
from agent.settings import Settings
from tools.gates import word_count


def _demo_settings(settings: Settings) -> tuple[Settings, Path | None]:
    """The demo's own throwaway SQLite file, unless a database was named explicitly."""
    explicit = os.environ.get("COACH_DATABASE_URL") or settings.database_url != \
        f"sqlite:///{settings.home / 'coach.db'}"
    if explicit:
        # A named database may hold earlier demo runs: a learner of its own keeps this
        # run's projects apart from theirs.
        user = f"demo-{datetime.now(UTC):%Y%m%d-%H%M%S}"
        return replace(settings, user=user, allow_private_urls=True), None
    path = settings.home / "demo.db"
    return replace(settings, user="demo", allow_private_urls=True,
                   database_url=f"sqlite:///{path}"), path


def _short(text: str, limit: int = 220) -> str:
    text = " ".join(text.split())
    # The gate's own count, so the number shown is the one the post-mortem is saved with.
    body = text.removeprefix("Post-mortem:")  # the label is not part of the post-mortem
    return text if len(text) <= limit else text[:limit] + f"… ({word_count(body):,} words)"


def coach_command() -> str:
    """`coach` as the learner can run it from where they are: the bare name only when it is
    on PATH (a checkout's `.venv/bin` usually is not), else the path to this very script."""
    invoked = Path(sys.argv[0]).resolve() if sys.argv and sys.argv[0] else None
    on_path = shutil.which("coach")
    if on_path and (invoked is None or invoked.name != "coach"
                    or Path(on_path).resolve() == invoked):
        return "coach"
    script = invoked if invoked is not None and invoked.name == "coach" else \
        Path(sys.prefix) / "bin" / "coach"
    try:
        relative = script.relative_to(Path.cwd())
    except ValueError:
        return shlex.quote(str(script))
    return shlex.quote(str(relative))


def _clip(reply: str, limit: int = 1800) -> str:
    """A drafted post-mortem is long: show its start and say where the rest is."""
    if len(reply) <= limit:
        return reply
    return reply[:limit].rsplit("\n", 1)[0] + "\n\n*… (the rest of the draft is stored; " \
        "see `coach postmortem draft`)*"


def demo(ctx: typer.Context) -> None:
    """A scripted learner through all six steps, against a local app the demo serves."""
    from agent.session import Coach  # the graph loads only for commands that run it

    settings, demo_db = _demo_settings(ctx.obj)
    console = Console()
    if demo_db is not None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{demo_db}{suffix}").unlink(missing_ok=True)
    with scratch_dir() as tmp, local_app() as url:
        repo = make_repo(Path(tmp))
        console.print(Panel.fit(
            f"A demo learner takes one project through all six steps.\n"
            f"Their app is served at {url}; their repository is {repo}.\n"
            f"Database: {settings.database_url}  ·  model: offline", title="coach demo"))
        with Coach.open(settings, model=OfflineCoach()) as coach:
            thread = coach.thread()
            result = None
            first: int | None = None
            for heading, message in script(str(repo), url):
                console.rule(f"[bold]{heading}")
                console.print(f"[bold green]learner>[/bold green] {_short(message)}")
                result = coach.turn(thread, message)
                first = first or result.project_id
                console.print(Markdown(_clip(result.reply)))
    if result is None or result.step != "problem":
        raise CoachError("the demo did not reach a second project; run with --debug")
    if demo_db is not None:
        db_flag = f"--db {shlex.quote(str(demo_db))} "
    elif settings.database_url != os.environ.get("COACH_DATABASE_URL"):  # named with --db
        db_flag = f"--db {shlex.quote(settings.database_url)} "
    else:
        db_flag = ""
    command = coach_command()
    console.rule("[bold]Done")
    console.print("One project went through all six steps and is [bold]done[/bold]; a harder "
                  "second project is started.\nWhere to look next:")
    console.print(
        f"  {command} {db_flag}--user {settings.user} projects list\n"
        f"  {command} {db_flag}--user {settings.user} projects show {first}\n"
        f"  {command} chat            start coaching your own first project\n",
        soft_wrap=True, markup=False, highlight=False)  # copyable, however long the path
    raise typer.Exit(0)
