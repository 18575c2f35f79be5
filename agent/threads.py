"""A learner's threads: the one place that creates, claims and reads them.

The CLI's Coach and the web routes both go through `Threads`, so a thread opened in the
browser starts on the learner's active project exactly as one opened in `coach chat`.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from agent.errors import CoachError, ThreadBusy
from memory.models import Thread, TranscriptEntry, utcnow
from memory.store import session_scope
from tools.projects import active_project_id

LEASE = timedelta(minutes=5)
THREAD_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class ThreadNotFound(CoachError):
    """No thread of this learner has that id (another learner's is answered the same)."""


class Threads:
    """One learner's threads and transcripts, and the lease that keeps one turn at a time
    on a thread across processes."""

    def __init__(self, engine: Engine, user_id: int, *, lease_wait: float = 0.0):
        self.engine = engine
        self.user_id = user_id
        self.lease_wait = lease_wait
        self.owner = uuid.uuid4().hex

    def open(self, thread_id: str | None = None) -> str:
        """An existing thread of this learner, or a new one (with this id if given)."""
        if thread_id is not None and not THREAD_ID.match(thread_id):
            raise CoachError(f"bad thread id {thread_id!r}: use letters, digits, '.', '_', '-'")
        thread_id = thread_id or uuid.uuid4().hex[:12]
        try:
            self._claim(thread_id)
        except IntegrityError:
            self._claim(thread_id)  # created by another process meanwhile: look again
        return thread_id

    def _claim(self, thread_id: str) -> None:
        with session_scope(self.engine) as s:
            found = s.get(Thread, thread_id)
            if found is None:
                # A new thread picks up the learner's current project, decided now, so two
                # new threads do not race for it later.
                s.add(Thread(id=thread_id, user_id=self.user_id,
                             project_id=active_project_id(s, self.user_id)))
            elif found.user_id != self.user_id:
                raise CoachError(f"thread {thread_id} belongs to another learner")

    def get(self, thread_id: str) -> Thread:
        """This learner's thread, or ThreadNotFound (never another learner's)."""
        with session_scope(self.engine) as s:
            thread = s.get(Thread, thread_id) if THREAD_ID.match(thread_id) else None
            if thread is None or thread.user_id != self.user_id:
                raise ThreadNotFound(f"no thread of yours has the id {thread_id!r}")
            return thread

    def all(self, *, newest_first: bool = False) -> list[Thread]:
        order = col(Thread.updated_at).desc() if newest_first else col(Thread.updated_at)
        with session_scope(self.engine) as s:
            return list(s.exec(select(Thread).where(Thread.user_id == self.user_id)
                               .order_by(order)).all())

    def transcript(self, thread_id: str) -> list[TranscriptEntry]:
        self.get(thread_id)
        with session_scope(self.engine) as s:
            return list(s.exec(select(TranscriptEntry)
                               .where(TranscriptEntry.thread_id == thread_id)
                               .order_by(col(TranscriptEntry.turn),
                                         col(TranscriptEntry.seq))).all())

    def project_of(self, thread_id: str) -> int | None:
        with session_scope(self.engine) as s:
            thread = s.get(Thread, thread_id)
            return thread.project_id if thread else None

    def record(self, thread_id: str, new: list[dict[str, Any]], error: str | None,
               project_id: int | None) -> int:
        """Append one turn's messages (and its error, if it failed) to the transcript."""
        with session_scope(self.engine) as s:
            thread = s.get(Thread, thread_id)
            assert thread is not None
            thread.turns += 1
            thread.updated_at = utcnow()
            if project_id is not None:
                thread.project_id = project_id
            for seq, message in enumerate(new):  # type: dict[str, Any]
                content = message["content"]
                if isinstance(content, str):
                    content = [{"type": "text", "text": content}]
                s.add(TranscriptEntry(thread_id=thread_id, turn=thread.turns, seq=seq,
                                      role=message["role"], content=content))
            if error:
                s.add(TranscriptEntry(thread_id=thread_id, turn=thread.turns, seq=len(new),
                                      role="error", content=[{"type": "text", "text": error}]))
            s.add(thread)
            return thread.turns

    # -- the lease ------------------------------------------------------------------------

    def _take_lease(self, thread_id: str) -> bool:
        now = utcnow()
        with session_scope(self.engine) as s:
            taken = s.execute(
                update(Thread)
                .where(col(Thread.id) == thread_id, col(Thread.user_id) == self.user_id)
                .where(col(Thread.lease_owner).is_(None) | (col(Thread.lease_until) < now))
                .values(lease_owner=self.owner, lease_until=now + LEASE))
        return bool(taken.rowcount == 1)  # type: ignore[attr-defined]

    def _set_lease(self, thread_id: str, until: Any) -> None:
        with session_scope(self.engine) as s:
            s.execute(update(Thread).where(col(Thread.id) == thread_id,
                                           col(Thread.lease_owner) == self.owner)
                      .values(lease_owner=self.owner if until else None, lease_until=until))

    def _renew(self, thread_id: str, stop: threading.Event) -> None:
        while not stop.wait(LEASE.total_seconds() / 3):
            self._set_lease(thread_id, utcnow() + LEASE)

    @contextmanager
    def lease(self, thread_id: str) -> Iterator[None]:
        """Hold the thread for one turn; wait a little for another session's turn first."""
        deadline = time.monotonic() + self.lease_wait
        while not self._take_lease(thread_id):
            if time.monotonic() >= deadline:
                raise ThreadBusy(f"thread {thread_id} is busy with another turn in another "
                                 "session; try again when it has answered")
            time.sleep(0.2)
        # A long turn (a slow model, retries) keeps its lease by renewing it.
        stop = threading.Event()
        keeper = threading.Thread(target=self._renew, args=(thread_id, stop), daemon=True)
        keeper.start()
        try:
            yield
        finally:
            stop.set()
            keeper.join()
            self._set_lease(thread_id, None)
