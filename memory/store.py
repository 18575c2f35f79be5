"""Opening the coach's database: SQLite by default, PostgreSQL by URL."""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from memory.migrations import migrate

log = logging.getLogger(__name__)


def give_back_later(give_back: Callable[[], None], within_s: float) -> None:
    """Retry `give_back` (freeing a lease or a slot) in the background until it works or
    `within_s` has passed. A turn that ends while the database is away (a PostgreSQL
    restart) could not free what it held; without this the thread or the learner's turn
    slot would stay taken until it expires, minutes after the database came back."""
    def retry() -> None:
        deadline = time.monotonic() + within_s
        pause = 0.5
        while time.monotonic() < deadline:
            time.sleep(pause)
            try:
                give_back()
                return
            except SQLAlchemyError:
                pause = min(pause * 2, 5.0)
        log.warning("could not give back a lease or slot within %.0f s", within_s)

    threading.Thread(target=retry, name="give-back", daemon=True).start()


class StoreError(Exception):
    """The database cannot be opened or written; the message says why."""


def _sqlite_path(url: str) -> Path | None:
    database = make_url(url).database
    if not database or database == ":memory:":
        return None
    return Path(database)


# The database holds transcripts, tokens and costs: only its owner may read it. SQLite
# gives the -wal and -shm files the database file's own mode.
FOLDER_MODE = 0o700
FILE_MODE = 0o600


def _prepare_sqlite_file(path: Path) -> None:
    try:
        # Folders the coach creates (the data folder, $COACH_HOME) are private; a folder
        # that already exists is the user's, and keeps its mode.
        missing = [p for p in (path.parent, *path.parent.parents) if not p.exists()]
        path.parent.mkdir(parents=True, exist_ok=True)
        for folder in missing:
            os.chmod(folder, FOLDER_MODE)
    except OSError as exc:
        raise StoreError(f"cannot create the data folder {path.parent}: {exc.strerror}") from exc
    try:
        # Opening for append proves we can write without touching existing data.
        os.close(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE))
        os.chmod(path, FILE_MODE)  # also a file an older version created 0644
    except OSError as exc:
        raise StoreError(f"cannot write the database file {path}: {exc.strerror}") from exc


def _sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        # Let SQLAlchemy's "begin" hook own transactions instead of pysqlite.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=15000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # IMMEDIATE takes the write lock up front, so a read-then-write transaction
        # (a lease, a turn counter) waits for another process instead of failing.
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def open_engine(url: str) -> Engine:
    """Create the engine for `url` and bring its schema up to date."""
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise StoreError(f"not a database URL: {url!r}") from exc
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise StoreError(f"unsupported database {backend!r}: use sqlite:/// or postgresql+psycopg://")
    if backend == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        path = _sqlite_path(url)
        if path is not None:
            _prepare_sqlite_file(path)
        engine = create_engine(parsed, connect_args={"check_same_thread": False, "timeout": 15})
        _sqlite_pragmas(engine)
    else:
        engine = create_engine(parsed, pool_pre_ping=True)
    try:
        migrate(engine)
    except SQLAlchemyError as exc:
        engine.dispose()
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        raise StoreError(f"cannot open the database {parsed.render_as_string()}: {reason}") from exc
    return engine


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One unit of work: committed on success, rolled back on any error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
