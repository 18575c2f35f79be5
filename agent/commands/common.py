"""What every command opens the same way: the store and the learner, and the shared options."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from sqlalchemy import Engine

from agent.settings import Settings
from memory.paging import BadCursor
from memory.store import open_engine
from memory.users import ensure_user


def json_option(help: str = "Print JSON.") -> bool:
    """The `--json` flag every command takes (scripts read one JSON document on stdout)."""
    flag: bool = typer.Option(False, "--json", help=help)
    return flag


def cursor_option() -> str | None:
    """The `--cursor` of the paged lists: where the previous page ended."""
    cursor: str | None = typer.Option(None, "--cursor",
                                      help="Continue after the page that printed this "
                                           "cursor (`next_cursor` in --json).")
    return cursor


@contextmanager
def cursor_checked() -> Iterator[None]:
    """A cursor this list did not hand out is a usage error (exit 2), named as such."""
    try:
        yield
    except BadCursor as exc:
        raise typer.BadParameter(str(exc).removeprefix("cursor: "),
                                 param_hint="--cursor") from exc


def more_line(command: str, cursor: str | None) -> str | None:
    """The dim hint under a page that is not the last: the command for the next one."""
    return f"[dim]more: {command} --cursor {cursor}[/dim]" if cursor else None


@contextmanager
def open_engine_for(settings: Settings) -> Iterator[Engine]:
    """The database, closed when the command is done (commands that act on no learner)."""
    engine = open_engine(settings.database_url)
    try:
        yield engine
    finally:
        engine.dispose()


@contextmanager
def open_store(settings: Settings) -> Iterator[tuple[Engine, int]]:
    """The database and the learner's id (created on first use), closed when done."""
    with open_engine_for(settings) as engine:
        yield engine, ensure_user(engine, settings.user)
