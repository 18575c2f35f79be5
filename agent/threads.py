"""A learner's threads: the one place that creates, claims and reads them.

The CLI's Coach and the web routes both go through `Threads`, so a thread opened in the
browser starts on the learner's active project exactly as one opened in `coach chat`.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import col, select

from agent.errors import CoachError, ThreadBusy
from memory.models import Thread, TranscriptEntry, utcnow
from memory.store import give_back_later, session_scope
from tools.projects import active_project_id

LEASE = timedelta(minutes=5)
# What a turn that never finished (its process was killed) says in the transcript.
UNFINISHED = ("this turn did not finish: the coach process stopped part-way; your message "
              "is kept and anything already saved stays saved; send it again to continue")
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
        # host:pid:nonce, so a later process on the same host can tell a dead owner's lease
        # (a `coach chat` killed mid-turn) from a live one and take it over at once.
        self.owner = f"{socket.gethostname()[:24]}:{os.getpid()}:{uuid.uuid4().hex[:16]}"

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

    def begin_turn(self, thread_id: str, text: str) -> int:
        """Store the learner's message before anything runs, so a process killed mid-turn
        loses nothing the learner said; a previous turn left unfinished that way is closed
        with an error entry saying so. Called under the thread's lease."""
        with session_scope(self.engine) as s:
            thread = s.get(Thread, thread_id)
            assert thread is not None
            if thread.turns:
                roles = set(s.exec(select(TranscriptEntry.role).where(
                    TranscriptEntry.thread_id == thread_id,
                    TranscriptEntry.turn == thread.turns)).all())
                if roles == {"user"}:
                    s.add(TranscriptEntry(thread_id=thread_id, turn=thread.turns, seq=1,
                                          role="error",
                                          content=[{"type": "text", "text": UNFINISHED}]))
            thread.turns += 1
            thread.updated_at = utcnow()
            s.add(TranscriptEntry(thread_id=thread_id, turn=thread.turns, seq=0, role="user",
                                  content=[{"type": "text", "text": text}]))
            s.add(thread)
            return thread.turns

    def record(self, thread_id: str, new: list[dict[str, Any]], error: str | None,
               project_id: int | None, *, turn: int | None = None) -> int:
        """Append one turn's messages (and its error, if it failed) to the transcript; with
        `turn` (from begin_turn), the learner's message is already stored."""
        with session_scope(self.engine) as s:
            thread = s.get(Thread, thread_id)
            assert thread is not None
            first = 0
            if turn is None:
                thread.turns += 1
            elif new and new[0]["role"] == "user":
                first = 1  # stored by begin_turn
            number = thread.turns if turn is None else turn
            thread.updated_at = utcnow()
            if project_id is not None:
                thread.project_id = project_id
            for seq, message in enumerate(new[first:], start=first):  # type: dict[str, Any]
                content = message["content"]
                if isinstance(content, str):
                    content = [{"type": "text", "text": content}]
                s.add(TranscriptEntry(thread_id=thread_id, turn=number, seq=seq,
                                      role=message["role"], content=content))
            if error:
                s.add(TranscriptEntry(thread_id=thread_id, turn=number, seq=max(len(new), 1),
                                      role="error", content=[{"type": "text", "text": error}]))
            s.add(thread)
            return number

    # -- the lease ------------------------------------------------------------------------

    def _take_lease(self, thread_id: str) -> bool:
        now = utcnow()
        with session_scope(self.engine) as s:
            holder = s.exec(select(Thread.lease_owner).where(col(Thread.id) == thread_id)).first()
            free = col(Thread.lease_owner).is_(None) | (col(Thread.lease_until) < now)
            if holder and _owner_is_dead(holder):
                free = free | (col(Thread.lease_owner) == holder)  # its process was killed
            taken = s.execute(
                update(Thread)
                .where(col(Thread.id) == thread_id, col(Thread.user_id) == self.user_id)
                .where(free)
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
            try:
                self._set_lease(thread_id, None)
            except SQLAlchemyError:
                give_back_later(lambda: self._set_lease(thread_id, None),
                                LEASE.total_seconds())
                raise


def _owner_is_dead(owner: str) -> bool:
    """True only for a lease held by a process of this host that no longer exists; a lease
    of another host (or of an old-style owner) waits for its expiry instead."""
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname()[:24] or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, someone else's
    return False
