"""A bound on the slow network checks one process runs at once.

A deployment fetch may take its whole 10 s and a repository clone 30 s, and each holds the
turn worker that runs it. The web app gives every worker process one `Outbound` smaller
than its turn pool, so however many learners point the coach at slow hosts, some turn
workers stay free for everyone else. A check that finds no free slot does not queue (a
queued check would hold its turn worker just the same): it is refused at once with a
reason the learner can act on, and nothing is recorded.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

from tools.base import ToolContext, ToolError


class Outbound:
    def __init__(self, limit: int):
        if limit < 1:
            raise ValueError("at least one network check must be allowed")
        self.limit = limit
        self._free = threading.BoundedSemaphore(limit)

    @contextmanager
    def slot(self, what: str) -> Iterator[None]:
        """Hold one of the slots while `what` (a deployment check, a clone) runs."""
        if not self._free.acquire(blocking=False):
            raise ToolError(f"the coach is busy with other network checks (at most "
                            f"{self.limit} at once), so {what} did not start and nothing was "
                            "recorded; send it again in a minute")
        try:
            yield
        finally:
            self._free.release()


def network_check(ctx: ToolContext, what: str) -> AbstractContextManager[None]:
    """A slot of the context's bound for one slow check, or no bound at all (the CLI)."""
    return ctx.outbound.slot(what) if ctx.outbound is not None else nullcontext()
