"""Rate-limit counters and running-turn slots kept in the coach's database.

`DatabaseStorage` is a storage backend for the `limits` library (fixed windows), so the
counters are shared by every worker process and every machine serving one database;
`TurnSlots` caps how many turns one learner has running at once, the same way. Both
are small atomic statements: SQLite serialises writers (BEGIN IMMEDIATE), PostgreSQL
resolves the upsert on the row's key.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from limits.storage import Storage
from sqlalchemy import Column as C
from sqlalchemy import (
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    case,
    delete,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError

from memory.store import give_back_later

_md = MetaData()
COUNTERS = Table("rate_counters", _md, C("key", String(200), primary_key=True),
                 C("hits", Integer, nullable=False), C("expires_at", Float, nullable=False))
SLOTS = Table("turn_slots", _md, C("id", String(32), primary_key=True),
              C("user_id", Integer, nullable=False), C("until", Float, nullable=False))


class DatabaseStorage(Storage):
    """Fixed-window counters in the `rate_counters` table (a `limits` storage)."""

    STORAGE_SCHEME = ["coach-database"]

    def __init__(self, engine: Engine, **options: Any):
        super().__init__(wrap_exceptions=False)
        self.engine = engine

    @property
    def base_exceptions(self) -> type[Exception]:
        return SQLAlchemyError

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        insert = pg_insert if self.engine.dialect.name == "postgresql" else sqlite_insert
        new = insert(COUNTERS).values(key=key, hits=amount, expires_at=now + expiry)
        expired = COUNTERS.c.expires_at <= now
        # One statement: a window that ended starts again at `amount`, otherwise it grows.
        stmt = new.on_conflict_do_update(index_elements=[COUNTERS.c.key], set_={
            "hits": case((expired, amount), else_=COUNTERS.c.hits + amount),
            "expires_at": case((expired, now + expiry), else_=COUNTERS.c.expires_at),
        }).returning(COUNTERS.c.hits)
        with self.engine.begin() as conn:
            return int(conn.execute(stmt).scalar_one())

    def get(self, key: str) -> int:
        with self.engine.connect() as conn:
            row = conn.execute(select(COUNTERS.c.hits, COUNTERS.c.expires_at)
                               .where(COUNTERS.c.key == key)).first()
        return int(row.hits) if row is not None and row.expires_at > time.time() else 0

    def get_expiry(self, key: str) -> float:
        with self.engine.connect() as conn:
            until = conn.execute(select(COUNTERS.c.expires_at)
                                 .where(COUNTERS.c.key == key)).scalar()
        return float(until) if until is not None else time.time()

    def check(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(select(1))
        except SQLAlchemyError:
            return False
        return True

    def reset(self) -> int | None:
        with self.engine.begin() as conn:
            return int(conn.execute(delete(COUNTERS)).rowcount)

    def clear(self, key: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(COUNTERS).where(COUNTERS.c.key == key))


class TurnSlots:
    """At most `limit` running turns per learner, across every worker sharing the database.

    A slot is a row taken before the turn starts and deleted when it ends; a worker killed
    mid-turn leaves its slot to expire after `ttl` seconds instead of holding it for ever.
    """

    def __init__(self, engine: Engine, limit: int, ttl: float = 300.0):
        self.engine = engine
        self.limit = limit
        self.ttl = ttl

    def take(self, user_id: int) -> str | None:
        """A slot id, or None when the learner already has `limit` turns running."""
        now = time.time()
        slot = uuid.uuid4().hex
        with self.engine.begin() as conn:
            if self.engine.dialect.name == "postgresql":
                # One learner's admissions queue behind each other (not other learners').
                conn.execute(select(func.pg_advisory_xact_lock(16_000_000 + user_id)))
            conn.execute(delete(SLOTS).where(SLOTS.c.user_id == user_id, SLOTS.c.until < now))
            running = conn.execute(select(func.count()).select_from(SLOTS)
                                   .where(SLOTS.c.user_id == user_id)).scalar_one()
            if running >= self.limit:
                return None
            conn.execute(SLOTS.insert().values(id=slot, user_id=user_id, until=now + self.ttl))
        return slot

    def give_back(self, slot: str) -> None:
        """Free the slot; with the database away, as soon as it is back (the turn's own
        answer does not depend on it)."""
        try:
            self._delete(slot)
        except SQLAlchemyError:
            give_back_later(lambda: self._delete(slot), self.ttl)

    def _delete(self, slot: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(SLOTS).where(SLOTS.c.id == slot))

    def running(self, user_id: int) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(SLOTS).where(
                SLOTS.c.user_id == user_id, SLOTS.c.until >= time.time())).scalar_one())
