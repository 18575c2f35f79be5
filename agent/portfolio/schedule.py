"""The scheduled re-check inside `coach serve`: a thread per worker process, and the
database lease row (`claim_tick`) makes exactly one of them run each tick."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import Engine

from agent.portfolio.recheck import claim_tick, owner_id, release

log = logging.getLogger(__name__)


class Schedule:
    def __init__(self, engine: Engine, hours: float, job: Callable[[datetime], object]):
        self.engine = engine
        self.every = timedelta(hours=hours)
        self.job = job
        self.owner = owner_id()
        # Look often enough that a tick is at most 1/20 of an interval late, and not more
        # than once a minute for the daily default.
        self.poll_s = min(60.0, max(0.2, self.every.total_seconds() / 20))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="recheck-schedule",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def tick(self) -> bool:
        """Run the job if this process wins the tick; True when it ran."""
        tick = claim_tick(self.engine, self.every, self.owner)
        if tick is None:
            return False
        try:
            self.job(tick)
        finally:
            release(self.engine, self.owner)
        return True

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                self.tick()
            except Exception:  # a bad night must not stop tomorrow's run
                log.exception("scheduled deployment re-check failed")
