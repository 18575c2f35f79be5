"""`coach`: the command line. Each command lives in `agent/commands/`."""

from __future__ import annotations

import os
import re
import sys
import traceback
from typing import Any

import typer
import typer.main

from agent.commands import chat, costs, demo, evaluate, postmortem, projects, serve, traces, users
from agent.commands import playbook as playbook_command
from agent.commands import portfolio as portfolio_commands
from agent.errors import CoachError
from agent.settings import Settings, SettingsError
from memory.store import StoreError
from playbook import PlaybookError
from seam.model import ModelError

app = typer.Typer(
    name="coach", add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
    help="portfolio-coach: takes you through six steps per portfolio project.")


@app.callback()
def main_options(
    ctx: typer.Context,
    db: str | None = typer.Option(None, "--db", help="SQLAlchemy URL or SQLite file path."),
    user: str | None = typer.Option(None, "--user", help="Learner name (default: $COACH_USER "
                                    "or your OS user)."),
    model: str | None = typer.Option(None, "--model", help="'offline' or an Anthropic model id."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors."),
) -> None:
    ctx.obj = Settings.load(db=db, user=user, model=model, debug=debug)


app.command("chat")(chat.chat)
app.command("demo")(demo.demo)
app.command("costs")(costs.costs)
app.command("eval")(evaluate.evaluate)
app.add_typer(projects.app, name="projects")
app.add_typer(postmortem.app, name="postmortem")
app.add_typer(traces.app, name="traces")
app.command("prune")(traces.prune)
app.command("serve")(serve.serve)
app.add_typer(users.app, name="users")
app.command("playbook")(playbook_command.playbook)
app.add_typer(portfolio_commands.app, name="portfolio")
app.command("recheck")(portfolio_commands.recheck)

USER_ERRORS = (CoachError, StoreError, SettingsError, ModelError, PlaybookError)
SENTENCE_END = re.compile(r"(?<=[.;:])\s")


def _one_line(paragraph: str) -> str:
    return " ".join(paragraph.split())


def tidy_help(command: Any) -> Any:
    """Help as a person reads it at 80 columns: docstrings' line breaks become spaces (rich
    markup keeps them, which broke sentences in the middle), the command list shows each
    command's first sentence, and a flag shows no `<bool>` type (it takes no value)."""
    if command.help:
        paragraphs = command.help.split("\n\n")
        command.help = "\n\n".join(_one_line(p) for p in paragraphs)
        if command.short_help is None:
            command.short_help = SENTENCE_END.split(_one_line(paragraphs[0]), maxsplit=1)[0]
    ctx = typer.Context(command, help_option_names=["--help"])
    for param in [*command.params, command.get_help_option(ctx)]:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    for sub in getattr(command, "commands", {}).values():
        tidy_help(sub)
    return command


def main() -> None:
    debug = "--debug" in sys.argv or os.environ.get("COACH_DEBUG") == "1"
    try:
        # Typer handles usage errors (exit 2) and --help itself, then exits.
        tidy_help(typer.main.get_command(app))(prog_name="coach")
    except KeyboardInterrupt:
        print("\ncoach: interrupted", file=sys.stderr)
        sys.exit(130)
    except USER_ERRORS as exc:
        if debug:
            traceback.print_exc()
        print(f"coach: error: {exc}", file=sys.stderr)
        sys.exit(1)
    except Exception as exc:  # the one place an unexpected error becomes one line
        if debug:
            traceback.print_exc()
        print(f"coach: unexpected error: {type(exc).__name__}: {exc}"
              " (run with --debug for a traceback)", file=sys.stderr)
        sys.exit(1)
