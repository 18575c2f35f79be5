"""The LangGraph checkpointer that matches the coach's database."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.postgres import PostgresSaver
from langgraph.checkpoint.sqlite import SqliteSaver
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool
from sqlalchemy.engine import make_url

# Checkpoint connections per process: turns run in threads (16 in a web worker).
POOL_SIZE = 8


class PrunableSqliteSaver(SqliteSaver):
    """SqliteSaver plus the `prune` that PostgresSaver already has.

    The coach keeps its own transcript, so a thread needs only its latest
    checkpoint; pruning keeps the database from growing with every turn.
    """

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        if isinstance(thread_ids, str):
            raise TypeError("thread_ids must be a sequence of thread IDs, not a str")
        with self.cursor() as cur:
            for thread_id in thread_ids:
                if strategy == "delete":
                    cur.execute("DELETE FROM checkpoints WHERE thread_id = ?", (thread_id,))
                    cur.execute("DELETE FROM writes WHERE thread_id = ?", (thread_id,))
                    continue
                for table in ("writes", "checkpoints"):
                    cur.execute(
                        f"DELETE FROM {table} WHERE thread_id = ? AND checkpoint_id NOT IN ("
                        " SELECT MAX(checkpoint_id) FROM checkpoints WHERE thread_id = ?"
                        " GROUP BY checkpoint_ns)",
                        (thread_id, thread_id),
                    )


@contextmanager
def open_checkpointer(url: str) -> Iterator[BaseCheckpointSaver]:
    """SqliteSaver beside a SQLite store, PostgresSaver beside a PostgreSQL one."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database or ":memory:"
        conn = sqlite3.connect(path, check_same_thread=False, timeout=15)
        try:
            saver = PrunableSqliteSaver(conn)
            saver.setup()
            yield saver
        finally:
            conn.close()
        return
    conninfo = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    # A pool that checks each connection before lending it: after the server restarts, a
    # dead connection is replaced instead of failing every later turn (one connection, as
    # `from_conn_string` gives, would stay dead for the life of the process).
    with ConnectionPool(conninfo, min_size=1, max_size=POOL_SIZE, open=True,
                        check=ConnectionPool.check_connection,
                        kwargs={"autocommit": True, "prepare_threshold": 0,
                                "application_name": "coach-checkpoints",
                                "row_factory": dict_row}) as pool:
        pg_saver = PostgresSaver(pool)  # type: ignore[arg-type]
        _setup_in_turn(pool, pg_saver)
        yield pg_saver


def _locked(row: object) -> bool:
    values = list(row.values()) if isinstance(row, dict) else list(row or ())  # type: ignore[call-overload]
    return bool(values and values[0])


def _setup_in_turn(pool: ConnectionPool, saver: PostgresSaver) -> None:
    """LangGraph's checkpoint migrations are not safe to race: processes starting at once
    (`coach serve --workers N` on a fresh database) take turns. The lock is polled, not
    waited for: a waiting statement would be a transaction that the migrations' CREATE
    INDEX CONCURRENTLY waits for in turn, a deadlock. It is held on a connection of its
    own while `setup` runs on another from the pool."""
    with pool.connection() as conn:
        while not _locked(conn.execute("SELECT pg_try_advisory_lock(7400102)").fetchone()):
            time.sleep(0.05)
        try:
            saver.setup()
        finally:
            conn.execute("SELECT pg_advisory_unlock(7400102)")
