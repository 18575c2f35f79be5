"""`coach users add|token|list`: who may sign in to `coach serve`."""

from __future__ import annotations

import json
from collections.abc import Callable

import typer
from sqlalchemy import Engine

from agent.commands.common import json_option, open_engine_for
from agent.errors import CoachError
from agent.settings import Settings
from memory.accounts import AccountError, add_user, issue_token, signed_in_users

app = typer.Typer(help="Learners who can sign in to `coach serve`.", no_args_is_help=True)


def _print_token(name: str, token: str, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps({"user": name, "token": token}))
        return
    typer.echo(f"user {name}: token {token}")
    typer.echo("Shown once and stored only as a hash. Sign in with it on the sign-in page, or "
               "send `Authorization: Bearer TOKEN`.", err=True)


def _with_engine(settings: Settings, action: Callable[[Engine, str], str], name: str) -> str:
    """Run an account action on the database; its refusals become one clear line."""
    try:
        with open_engine_for(settings) as engine:
            return action(engine, name)
    except AccountError as exc:
        raise CoachError(str(exc)) from exc


@app.command("add")
def add(ctx: typer.Context, name: str = typer.Argument(..., metavar="NAME"),
        as_json: bool = json_option("Print {\"user\", \"token\"}.")
        ) -> None:
    """Add a learner (or give an existing `coach chat` learner a token) and print the token."""
    _print_token(name.strip(), _with_engine(ctx.obj, add_user, name), as_json)


@app.command("token")
def token(ctx: typer.Context, name: str = typer.Argument(..., metavar="NAME"),
          as_json: bool = json_option("Print {\"user\", \"token\"}.")
          ) -> None:
    """Issue a new token for a learner; the old token and their browser sessions stop working."""
    _print_token(name.strip(), _with_engine(ctx.obj, issue_token, name), as_json)


@app.command("list")
def list_users(ctx: typer.Context,
               as_json: bool = json_option()) -> None:
    """Learners who can sign in to `coach serve`: with a token, or through a sign-in link."""
    settings: Settings = ctx.obj
    with open_engine_for(settings) as engine:
        users = signed_in_users(engine)
    if as_json:
        typer.echo(json.dumps({"users": list(users)}))
        return
    if not users:
        typer.echo("No users yet: `coach users add NAME`, or sign in through the link "
                   "`coach serve` prints.")
        return
    width = max(len(name) for name in users)
    typer.echo("\n".join(f"{name:<{width}}  {how}" for name, how in users.items()))
