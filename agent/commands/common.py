"""What every command opens the same way: the store and the learner, and the shared options."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from sqlalchemy import Engine

from agent.settings import Settings
from memory.store import open_engine
from memory.users import ensure_user


def json_option(help: str = "Print JSON.") -> bool:
    """The `--json` flag every command takes (scripts read one JSON document on stdout)."""
    flag: bool = typer.Option(False, "--json", help=help)
    return flag


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
